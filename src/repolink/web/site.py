"""The one router of every page, built from :data:`PAGES` for the service app.

:func:`build_web_router` makes the :class:`~repolink.web.kit.PageKit` (templates, cookies, the
route classes of :mod:`.routing`) and includes, in order: the static files, each builder of
:data:`PAGES` (the one place a page module is added), and last the 404 page for any other
address under ``/ui``. The service app passes its own mapping from errors to HTTP statuses
(``status_of``), so the pages answer each error with the status the API would, without this
package importing ``http/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from repolink.errors import NotFound, RepolinkError
from repolink.web import paths
from repolink.web.account import build_account_pages
from repolink.web.audit import build_audit_pages
from repolink.web.checkout_keys import build_checkout_key_pages
from repolink.web.commits import build_commit_pages
from repolink.web.cookies import CookieJar
from repolink.web.executions import build_execution_pages
from repolink.web.fetches import build_fetch_pages
from repolink.web.host_access_keys import build_host_access_key_pages
from repolink.web.host_account_keys import build_host_account_key_pages
from repolink.web.host_repositories import build_host_repository_pages
from repolink.web.host_webhooks import build_host_webhook_pages
from repolink.web.kit import PageKit
from repolink.web.known_hosts import build_known_host_pages
from repolink.web.members import build_member_pages
from repolink.web.project_keys import build_project_key_pages
from repolink.web.project_webhooks import build_project_webhook_pages
from repolink.web.projects import build_project_pages
from repolink.web.repository import build_repository_pages
from repolink.web.repository_checks import build_repository_check_pages
from repolink.web.routing import PageGuard
from repolink.web.signin import build_signin_pages
from repolink.web.static_files import build_static_router
from repolink.web.templating import Renderer, make_environment

if TYPE_CHECKING:
    from repolink.app import Repolink

PageBuilder = Callable[[PageKit], APIRouter]

# The one place a page module is added: its builder, in the order its routes should match.
PAGES: tuple[PageBuilder, ...] = (
    build_signin_pages,
    build_account_pages,
    build_project_pages,
    build_member_pages,
    build_checkout_key_pages,
    build_project_key_pages,
    build_project_webhook_pages,
    build_known_host_pages,
    build_host_repository_pages,
    build_host_access_key_pages,
    build_host_account_key_pages,
    build_host_webhook_pages,
    build_repository_pages,
    build_repository_check_pages,
    build_commit_pages,
    build_execution_pages,
    build_fetch_pages,
    build_audit_pages,
)


def build_web_router(
    application: Repolink,
    *,
    status_of: Callable[[RepolinkError], int],
    ssh_url_base: str | None = None,
) -> APIRouter:
    """Every page under ``/ui``; errors answered with the statuses of ``status_of``;
    ``ssh_url_base``: the built-in SSH host's base URL, when this server runs it."""
    cookies = CookieJar.for_settings(application.settings)
    renderer = Renderer(make_environment(application.clock), cookies)
    guard = PageGuard(
        sessions=lambda: application.sessions,
        cookies=cookies,
        public_url=application.settings.public_url,
        error_page=renderer.error,
        status_of=status_of,
    )
    kit = PageKit(
        app=application,
        renderer=renderer,
        cookies=cookies,
        signed_in=guard.route_class(signed_in=True),
        anyone=guard.route_class(signed_in=False),
        status_of=status_of,
        ssh_url_base=ssh_url_base,
    )
    router = APIRouter()
    router.include_router(build_static_router())
    for build in PAGES:
        router.include_router(build(kit))
    router.include_router(_fallback(kit))
    return router


def _fallback(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.anyone)

    @router.get(paths.PREFIX, include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(paths.HOME, status_code=303)

    @router.api_route(
        f"{paths.PREFIX}/{{rest:path}}", methods=["GET", "POST"], include_in_schema=False
    )
    async def not_found(request: Request, rest: str) -> Response:
        if rest == "":
            return RedirectResponse(paths.HOME, status_code=303)
        raise NotFound(
            "not_found",
            "there is no page at this address, or it is not yours to see",
            "check the address, or start again from the list of projects",
        )

    return router
