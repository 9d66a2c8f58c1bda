"""The one way repolink builds a FastAPI app: the host API now, the platform API later.

Every app answers errors in the one shape of :mod:`repolink.http.errors` and refuses bodies
over its size limit before parsing them; routers are added by the caller.
"""

from __future__ import annotations

from fastapi import FastAPI

from repolink import __version__
from repolink.http.docs import install_docs
from repolink.http.errors import install_error_handlers
from repolink.http.limits import BodySizeLimit


def create_app(*, title: str, description: str, prefix: str, max_body_bytes: int) -> FastAPI:
    """A FastAPI app whose OpenAPI document and docs page live under ``prefix``, and whose
    root and ``prefix`` say where they are."""
    openapi_url = f"{prefix}/openapi.json"
    app = FastAPI(
        title=title,
        version=__version__,
        description=description,
        openapi_url=openapi_url,
        # FastAPI's pages load their assets from a CDN: our own page needs none.
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app, prefix=prefix, docs_url=f"{prefix}/docs", openapi_url=openapi_url)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app
