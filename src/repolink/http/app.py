"""The one way repolink builds a FastAPI app: the host API alone, or the whole service.

Every app answers errors in the one shape of :mod:`repolink.http.errors` and refuses bodies
over its size limit before parsing them; routers are added by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from repolink import __version__
from repolink.http.docs import install_docs
from repolink.http.errors import install_error_handlers
from repolink.http.limits import BodySizeLimit
from repolink.http.openapi import document_errors


def create_app(
    *,
    title: str,
    description: str,
    prefix: str,
    max_body_bytes: int,
    docs_url: str | None = None,
    links: Mapping[str, str] | None = None,
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """A FastAPI app whose OpenAPI document lives under ``prefix`` and whose docs page at
    ``docs_url`` (default ``{prefix}/docs``); its root and ``prefix`` say where they are, and
    name ``links`` (name → path) besides.

    Bodies are capped at ``max_body_bytes``, or at the limit of the longest path prefix of
    ``body_limits`` that a request's path starts with.
    """
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
    install_docs(
        app,
        prefix=prefix,
        docs_url=docs_url or f"{prefix}/docs",
        openapi_url=openapi_url,
        links=links,
    )
    install_error_handlers(app)
    document_errors(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes, path_limits=body_limits)
    return app
