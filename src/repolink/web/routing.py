"""The route classes of the pages: who is asking, forged posts refused, errors as pages.

A page's route runs, before its handler and before FastAPI reads the form into parameters:

1. the session cookie resolved to a :class:`~repolink.accounts.sessions.SignedIn` by
   ``app.sessions``; its principal on ``request.state.principal`` (the very principal a token
   gives the APIs, so pages make the same ``app.access`` checks), its CSRF secret on
   ``request.state.csrf_token``; before sign-in, the sign-in page's own token (a cookie);
2. no session on a page that needs one: a redirect to the sign-in page, coming back after;
3. an unsafe method: the origin checked, then the ``X-CSRF-Token`` header (a script's
   request) or else the form's ``csrf_token`` field (:mod:`.csrf`);
4. the handler; a :class:`~repolink.errors.RepolinkError` it lets through becomes the error
   page with the status of the one HTTP mapping (``status_of``, given by the service app), a
   form FastAPI cannot read a 400 page; never a JSON body, never a traceback.

Every GET route answers HEAD too, as GET would (status, headers, the body's
``Content-Length``) without the body (:func:`headers_only`).

Every answer carries a Content-Security-Policy allowing only this server's own scripts and
styles, and ``Cache-Control: no-store`` (pages hold CSRF tokens and project data).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from repolink.accounts.sessions import SessionService
from repolink.errors import RepolinkError, Unauthorized
from repolink.logsafe import escaped
from repolink.web import csrf, paths
from repolink.web.cookies import PRESESSION_CSRF, SESSION, CookieJar
from repolink.web.templating import ErrorPage

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PRESESSION_TOKEN_BYTES = 32

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def headers_only(response: Response) -> Response:
    """``response`` as the answer to HEAD: the status and headers a GET gets (its
    ``Content-Length`` too, set when the response was made), and no body."""
    response.body = b""
    return response


@dataclass(frozen=True)
class PageGuard:
    """What the route classes need: the sessions, the cookies, the public URL, the error
    page and the one mapping from errors to HTTP statuses."""

    sessions: Callable[[], SessionService]
    cookies: CookieJar
    public_url: str | None
    error_page: ErrorPage
    status_of: Callable[[RepolinkError], int]

    def route_class(self, *, signed_in: bool) -> type[APIRoute]:
        """The route class of pages that need a signed-in person (``signed_in``), or of
        those anyone may open (the sign-in page)."""
        guard = self

        class PageRoute(APIRoute):
            def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
                super().__init__(path, endpoint, **kwargs)
                if self.methods is not None and "GET" in self.methods:
                    self.methods.add("HEAD")

            def get_route_handler(self) -> Handler:
                handler = super().get_route_handler()

                async def page_handler(request: Request) -> Response:
                    response = await guard.serve(request, handler, signed_in=signed_in)
                    response.headers.update(SECURITY_HEADERS)
                    return headers_only(response) if request.method == "HEAD" else response

                return page_handler

        return PageRoute

    async def serve(self, request: Request, handler: Handler, *, signed_in: bool) -> Response:
        session_secret = self.cookies.read(request, SESSION)
        current = (
            await run_in_threadpool(self.sessions().resolve, session_secret)
            if session_secret
            else None
        )
        request.state.web_session = current
        request.state.principal = current.principal if current is not None else None
        presession = self.cookies.read(request, PRESESSION_CSRF)
        new_presession = None
        if current is not None:
            request.state.csrf_token = current.csrf_secret
        else:
            if presession is None:
                presession = new_presession = secrets.token_urlsafe(PRESESSION_TOKEN_BYTES)
            request.state.csrf_token = presession
        try:
            if signed_in and current is None:
                response: Response = self._to_signin(request)
            else:
                if request.method in csrf.UNSAFE_METHODS:
                    await self._check_form(
                        request,
                        current_token=request.state.csrf_token,
                        # Only a page anyone may open accepts the sign-in page's token.
                        presession=None if signed_in else presession,
                    )
                response = await handler(request)
        except Unauthorized as exc:
            if exc.code == "unauthorized" and current is None:
                response = self._to_signin(request)
            else:
                response = self._error(request, exc)
        except RepolinkError as exc:
            response = self._error(request, exc)
        except RequestValidationError:
            response = self.error_page(
                request,
                400,
                "invalid_form",
                "this form was sent without a field it needs, or with one that cannot be read",
                "go back, reload the page and fill in the form again",
            )
        if session_secret and current is None:
            self.cookies.clear(response, SESSION)  # ended: the browser may forget it
        if new_presession is not None:
            self.cookies.write(response, PRESESSION_CSRF, new_presession)
        return response

    async def _check_form(
        self, request: Request, *, current_token: str, presession: str | None
    ) -> None:
        csrf.check_origin(request, self.public_url)
        # A script's request (fetch) may send the token as a header instead of a form field.
        presented = request.headers.get(csrf.HEADER)
        if presented is None:
            form = await request.form()
            field = form.get(csrf.FIELD)
            presented = field if isinstance(field, str) else None
        candidates = [current_token]
        if presession is not None and presession != current_token:
            # A sign-in form shown before another tab signed in still carries the page's
            # token; it is this browser's own cookie, so it is as good.
            candidates.append(presession)
        csrf.check_token(request, presented, candidates)

    def _to_signin(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(paths.signin(target), status_code=303)

    def _error(self, request: Request, exc: RepolinkError) -> Response:
        status = self.status_of(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, escaped(request.url.path), exc.one_line())
        return self.error_page(request, status, exc.code, exc.message, exc.hint)
