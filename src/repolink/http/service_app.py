"""The one HTTP app ``repolink serve`` runs: every API of the service behind one error mapping,
one body-size limit and (in the server) one connection guard.

- the platform API under ``/api/v1``; the OpenAPI document of the whole service at
  ``/api/v1/openapi.json``, our own docs page (no CDN) at ``/api/docs``; ``/`` and ``/api/v1``
  answer JSON links to them;
- the built-in host's Bitbucket-shaped API under ``/host/api/2.0``, with a document of its own
  routes at ``/host/api/2.0/openapi.json`` (a page at ``/host/api/2.0/docs``, links at
  ``/host/api/2.0``) for clients written against Bitbucket;
- webhook receivers under ``/hooks/…``, CircleCI-shaped checkout keys under ``/api/v2/…`` and
  ``/api/v1.1/…``;
- ``/healthz`` and ``/readyz`` (:mod:`repolink.http.health`);
- the web pages under ``/ui`` (:mod:`repolink.web`), answering errors with this app's statuses.

:data:`ROUTERS` is the one place routers are added: a builder takes the application and the
:class:`ServiceContext` of the running server and returns an :class:`~fastapi.APIRouter`
carrying its full paths. Add one import and one entry.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from repolink.http.app import create_app
from repolink.http.circleci import build_circleci_router
from repolink.http.context import RouterBuilder, ServiceContext
from repolink.http.docs import CONTENT_SECURITY_POLICY, render_docs
from repolink.http.errors import http_status_of
from repolink.http.health import build_health_router
from repolink.http.host_api import API_PREFIX as HOST_API_PREFIX
from repolink.http.host_api import build_host_router
from repolink.http.host_schemas import MAX_BODY_BYTES
from repolink.http.v1_audit import build_audit_router
from repolink.http.v1_commits import build_commits_router
from repolink.http.v1_keys import build_keys_router
from repolink.http.v1_known_hosts import build_known_hosts_router
from repolink.http.v1_projects import build_projects_router
from repolink.http.v1_repository import build_repository_router
from repolink.http.webhooks_in import MAX_BODY_BYTES as WEBHOOK_MAX_BODY_BYTES
from repolink.http.webhooks_in import build_webhook_router, build_webhook_settings_router
from repolink.web import paths as web_paths
from repolink.web.site import build_web_router

if TYPE_CHECKING:
    from repolink.app import Repolink

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DOCS_URL = "/api/docs"
OPENAPI_URL = f"{API_PREFIX}/openapi.json"
HOST_OPENAPI_URL = f"{HOST_API_PREFIX}/openapi.json"
HOST_DOCS_URL = f"{HOST_API_PREFIX}/docs"
HOOKS_PREFIX = "/hooks/"

# The webhook receivers' own cap (a big push's payload runs to hundreds of KiB).
BODY_LIMITS = {HOOKS_PREFIX: WEBHOOK_MAX_BODY_BYTES}


def _host_router(application: Repolink, context: ServiceContext) -> APIRouter:
    return build_host_router(application, ssh_url_base=context.ssh_url_base)


def _web_router(application: Repolink, context: ServiceContext) -> APIRouter:
    return build_web_router(
        application, status_of=http_status_of, ssh_url_base=context.ssh_url_base
    )


# The one place routers are added (see the module's docstring).
ROUTERS: tuple[RouterBuilder, ...] = (
    build_health_router,
    _host_router,
    build_webhook_router,
    build_projects_router,
    build_repository_router,
    build_commits_router,
    build_circleci_router,
    build_webhook_settings_router,
    build_keys_router,
    build_known_hosts_router,
    build_audit_router,
    _web_router,
)


def create_service_app(application: Repolink, *, ssh_url_base: str | None = None) -> FastAPI:
    """The service's app, its routers built by :data:`ROUTERS` from ``application``."""
    app = create_app(
        title="repolink API",
        description=(
            "repolink's platform API (projects, repository connections, deploy keys, fetches, "
            "commits), the built-in Git host's Bitbucket-shaped API, CircleCI-shaped checkout "
            "keys and webhook receivers."
        ),
        prefix=API_PREFIX,
        docs_url=DOCS_URL,
        max_body_bytes=MAX_BODY_BYTES,
        body_limits=BODY_LIMITS,
        links={
            "host_api": HOST_API_PREFIX,
            "host_openapi": HOST_OPENAPI_URL,
            "health": "/healthz",
            "ready": "/readyz",
            "pages": web_paths.PREFIX,
        },
    )
    context = ServiceContext(ssh_url_base=ssh_url_base)
    for build in ROUTERS:
        app.include_router(build(application, context))
    _install_host_document(app)
    return app


def _install_host_document(app: FastAPI) -> None:
    """The host API's own OpenAPI document and page: its routes only, as a Bitbucket-shaped
    API of its own, for clients and generators that expect just that."""
    document: dict[str, Any] = {}

    def host_document() -> dict[str, Any]:
        # The whole service's document, cut to the host's paths; its components stay whole
        # (unused schemas are valid OpenAPI), so every reference still resolves.
        if not document:
            whole = app.openapi()
            document.update(whole)
            document["info"] = {
                **whole["info"],
                "title": "repolink host API",
                "description": "Bitbucket Cloud-shaped API of repolink's built-in Git host.",
            }
            document["paths"] = {
                path: operations
                for path, operations in whole.get("paths", {}).items()
                if path.startswith(HOST_API_PREFIX)
            }
        return document

    async def host_openapi() -> JSONResponse:
        return JSONResponse(host_document())

    async def host_docs() -> HTMLResponse:
        return HTMLResponse(
            render_docs(host_document(), HOST_OPENAPI_URL),
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def host_index() -> JSONResponse:
        links = {
            "docs": {"href": HOST_DOCS_URL},
            "openapi": {"href": HOST_OPENAPI_URL},
            "api": {"href": HOST_API_PREFIX},
        }
        return JSONResponse({"name": "repolink host API", "version": app.version, "links": links})

    app.add_api_route(HOST_API_PREFIX, host_index, methods=["GET"], include_in_schema=False)
    app.add_api_route(HOST_OPENAPI_URL, host_openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route(HOST_DOCS_URL, host_docs, methods=["GET"], include_in_schema=False)
