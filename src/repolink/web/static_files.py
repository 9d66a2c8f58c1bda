"""The pages' own CSS and JavaScript (``web/static``), served from memory: no CDN, no build.

The files are read once when the router is built. They are the same for everyone, so their
route resolves no session; a name not among them is a plain 404.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from repolink.web import paths
from repolink.web.routing import headers_only

CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
CACHE_CONTROL = "public, max-age=300"


def load_static() -> dict[str, tuple[bytes, str]]:
    """Every file of ``web/static`` of a type in :data:`CONTENT_TYPES`: name → (body, type)."""
    found: dict[str, tuple[bytes, str]] = {}
    for entry in files("repolink.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            found[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return found


def build_static_router() -> APIRouter:
    assets = load_static()
    router = APIRouter()

    @router.api_route(f"{paths.STATIC}/{{name}}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static_file(request: Request, name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            response = Response("no such file\n", status_code=404, media_type="text/plain")
        else:
            body, content_type = asset
            response = Response(
                body,
                media_type=content_type,
                headers={"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"},
            )
        return headers_only(response) if request.method == "HEAD" else response

    return router
