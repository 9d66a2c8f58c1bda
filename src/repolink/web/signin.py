"""Sign in and sign out (docs/architecture.md, "Sessions").

``GET /ui/signin`` shows the form (with the sign-in page's own CSRF token: no session yet);
``POST /ui/signin`` makes a new session through ``app.sessions`` — a session the browser
already had is ended first, so no one can fix an id in advance — sets the cookie and goes on to
the page that sent the person here. ``POST /ui/signout`` ends the session.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.errors import Unauthorized
from repolink.web import paths
from repolink.web.cookies import PRESESSION_CSRF, SESSION
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit


def build_signin_pages(kit: PageKit) -> APIRouter:
    anyone = APIRouter(route_class=kit.anyone)
    signed_in = APIRouter(route_class=kit.signed_in)

    @anyone.get(paths.SIGNIN, include_in_schema=False)
    async def signin_form(request: Request, next: str | None = None) -> Response:
        target = paths.safe_next(next)
        if getattr(request.state, "principal", None) is not None:
            return kit.redirect(target)
        return kit.page(
            request,
            "signin.html",
            title="Sign in",
            next_path=target,
            username="",
            errors=FormErrors(),
        )

    @anyone.post(paths.SIGNIN, include_in_schema=False)
    async def signin(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        next: str = Form(""),
    ) -> Response:
        target = paths.safe_next(next)
        errors = FormErrors()
        old_secret = kit.cookies.read(request, SESSION)
        try:
            opened = await kit.call(
                kit.app.sessions.sign_in, username, password, source=kit.client_address(request)
            )
        except Unauthorized as exc:  # signin_failed, and RateLimited signin_throttled
            errors.add(exc)
            return kit.page(
                request,
                "signin.html",
                title="Sign in",
                status=kit.status_of(exc),
                next_path=target,
                username=username[:100],
                errors=errors,
            )
        if old_secret:
            await kit.call(kit.app.sessions.sign_out, old_secret)
        response = kit.signed_in_redirect(target, opened)
        kit.cookies.clear(response, PRESESSION_CSRF)
        return response

    @signed_in.post(paths.SIGNOUT, include_in_schema=False)
    async def signout(request: Request) -> Response:
        await kit.call(kit.app.sessions.sign_out, kit.cookies.read(request, SESSION))
        response = kit.redirect(paths.SIGNIN, notice="You are signed out.")
        kit.cookies.clear(response, SESSION)
        return response

    router = APIRouter()
    router.include_router(anyone)
    router.include_router(signed_in)
    return router
