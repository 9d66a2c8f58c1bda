"""The signed-in person's own account: change the password, sign out everywhere.

Both end every session of the user (``app.sessions``); a password change opens a new one for
the browser that made it, so the person stays signed in here and nowhere else.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.errors import RepolinkError, ValidationError
from repolink.web import paths
from repolink.web.confirm import Question, confirm_page
from repolink.web.cookies import SESSION
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit

# Which field each error of a password change is shown beside.
PASSWORD_FIELDS = {
    "password_wrong": "current",
    "signin_throttled": "current",
    "password_invalid": "new",
    "password_mismatch": "confirm",
}


def build_account_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)

    def account_page(request: Request, errors: FormErrors, status: int = 200) -> Response:
        session = kit.session(request)
        return kit.page(
            request,
            "account.html",
            title="Your account",
            status=status,
            errors=errors,
            session=session,
        )

    @router.get(paths.ACCOUNT, include_in_schema=False)
    async def account(request: Request) -> Response:
        return account_page(request, FormErrors())

    @router.post(f"{paths.ACCOUNT}/password", include_in_schema=False)
    async def change_password(
        request: Request,
        current: str = Form(""),
        new: str = Form(""),
        confirm: str = Form(""),
    ) -> Response:
        principal = kit.principal(request)
        errors = FormErrors()
        try:
            if new != confirm:
                raise ValidationError(
                    "password_mismatch",
                    "the new password and its repetition differ",
                    "type the same new password twice",
                )
            opened = await kit.call(
                kit.app.sessions.change_password,
                principal,
                current,
                new,
                source=kit.client_address(request),
            )
        except RepolinkError as exc:
            errors.add(exc, PASSWORD_FIELDS)
            return account_page(request, errors, status=kit.status_of(exc))
        return kit.signed_in_redirect(
            paths.ACCOUNT, opened, notice="Your password is changed; every other sign-in has ended."
        )

    @router.get(f"{paths.ACCOUNT}/signout-everywhere", include_in_schema=False)
    async def signout_everywhere_question(request: Request) -> Response:
        return confirm_page(
            kit,
            request,
            Question(
                "Sign out on every device?",
                action=f"{paths.ACCOUNT}/signout-everywhere",
                button="Sign out everywhere",
                then="Every session of yours ends, this one too: sign in again where you need.",
            ),
            heading="Your account",
            back=paths.ACCOUNT,
        )

    @router.post(f"{paths.ACCOUNT}/signout-everywhere", include_in_schema=False)
    async def signout_everywhere(request: Request) -> Response:
        await kit.call(kit.app.sessions.sign_out_everywhere, kit.principal(request))
        response = kit.redirect(paths.SIGNIN, notice="You are signed out everywhere.")
        kit.cookies.clear(response, SESSION)
        return response

    return router
