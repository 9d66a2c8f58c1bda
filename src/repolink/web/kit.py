"""What a page builder is given: :class:`PageKit`, the one object every page module uses.

A page module exports ``build_<name>_pages(kit) -> APIRouter`` and is listed in
:data:`repolink.web.site.PAGES`. Its router is ``APIRouter(route_class=kit.signed_in)`` (or
``kit.anyone`` for a page shown before sign-in); its handlers take the principal with
``kit.principal(request)``, check access with ``kit.app.access``, call one service (in the
thread pool: services block) and answer with ``kit.page(...)`` or ``kit.redirect(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from repolink.accounts.sessions import ABSOLUTE_LIFETIME, NewSession, SignedIn
from repolink.auth.principal import Principal
from repolink.errors import RepolinkError, Unauthorized
from repolink.netpolicy import forwarded_client
from repolink.web.cookies import SESSION, CookieJar
from repolink.web.templating import Renderer

if TYPE_CHECKING:
    from repolink.app import Repolink

_T = TypeVar("_T")


@dataclass(frozen=True)
class PageKit:
    app: Repolink
    renderer: Renderer
    cookies: CookieJar
    signed_in: type[APIRoute]
    """The route class of pages for signed-in people (anyone else is sent to sign in)."""
    anyone: type[APIRoute]
    """The route class of pages anyone may open (sign-in)."""
    status_of: Callable[[RepolinkError], int]
    """The one mapping from errors to HTTP statuses (the API's): a form shown again with a
    service's error answers ``kit.status_of(error)``."""
    ssh_url_base: str | None = None
    """How clients reach the built-in SSH host (``ssh://git@host:2222``) when this server runs
    it, else ``None``: the host pages show clone URLs from it."""

    def page(
        self, request: Request, template: str, *, title: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """``template`` (under ``web/templates``) with the layout's context added."""
        return self.renderer.page(request, template, title=title, status=status, **context)

    def redirect(self, url: str, *, notice: str | None = None) -> RedirectResponse:
        """A 303 to ``url`` (after a form: the browser GETs it); ``notice`` is shown there."""
        response = RedirectResponse(url, status_code=303)
        if notice:
            self.cookies.write_notice(response, notice)
        return response

    @staticmethod
    def session(request: Request) -> SignedIn:
        """The session of the request (routes of ``kit.signed_in`` never run without one)."""
        session = getattr(request.state, "web_session", None)
        if not isinstance(session, SignedIn):
            raise Unauthorized("unauthorized", "sign in to see this page", "sign in")
        return session

    @classmethod
    def principal(cls, request: Request) -> Principal:
        """Who is signed in: the principal every service call is made for."""
        return cls.session(request).principal

    def signed_in_redirect(
        self, url: str, opened: NewSession, *, notice: str | None = None
    ) -> RedirectResponse:
        """:meth:`redirect`, setting the cookie of the session just ``opened``."""
        response = self.redirect(url, notice=notice)
        self.cookies.write(
            response, SESSION, opened.secret, max_age=int(ABSOLUTE_LIFETIME.total_seconds())
        )
        return response

    def client_address(self, request: Request) -> str:
        """Where a request came from, as sign-in failures are counted by: its peer, or the
        client a trusted proxy (``REPOLINK_TRUSTED_PROXIES``) names in ``X-Forwarded-For``."""
        peer = request.client.host if request.client is not None else "unknown"
        return forwarded_client(
            peer,
            request.headers.getlist("x-forwarded-for"),
            self.app.settings.trusted_proxy_networks,
        )

    @staticmethod
    async def call(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``function(*args, **kwargs)`` in the thread pool: services block on the store."""
        return await run_in_threadpool(function, *args, **kwargs)
