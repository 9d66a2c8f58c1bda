"""Project settings → Checkout keys (CircleCI's page of that name, issue 12).

Add a deploy key (admins: a key rotation starts, the new key pending until it is proven) or a
user key of the signed-in user (members); the list shows each key's MD5 and SHA256
fingerprints, which one fetches use ("preferred"), and its public key with a copy button — what
CircleCI's article sends people into the browser's developer tools for. A user key is deleted by
its user or an admin, a deploy key by an admin, after a confirmation page of its own (no
script needed, :mod:`.confirm`). Every action is
:class:`~repolink.accounts.checkout_key_access.CheckoutKeyAccess`'s, as the API's: the same
roles, the same audit entries. A private key is never part of the page.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.auth.principal import Principal, Role
from repolink.errors import NotFound, RepolinkError
from repolink.platform.checkout_keys import DEPLOY_KEY, USER_KEY, CheckoutKeyInfo
from repolink.web import paths
from repolink.web.confirm import Question, asked_about, confirm_project_page
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit
from repolink.web.projects import CHECKOUT_KEYS, open_project

# Errors that are not about the form: their own page (404, 403).
PAGE_ERRORS = ("project_not_found", "role_required")
Action = Callable[[Principal, str, str], CheckoutKeyInfo]
KINDS = {DEPLOY_KEY: "deploy key", USER_KEY: "user key"}


def build_checkout_key_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = CHECKOUT_KEYS.route

    async def show(
        request: Request, slug: str, errors: FormErrors | None = None, status: int = 200
    ) -> Response:
        principal = kit.principal(request)
        opened = await open_project(kit, request, slug, CHECKOUT_KEYS.role)
        project = opened.project
        keys = await kit.call(kit.app.checkout_key_access.list, principal, project.slug)
        return kit.page(
            request,
            "projects/checkout_keys.html",
            title=f"Checkout keys · {project.name}",
            status=status,
            **opened.layout,
            keys=keys,
            user_id=principal.user_id,
            has_user_key=any(k.owner_user_id == principal.user_id for k in keys),
            errors=errors or FormErrors(),
        )

    async def act(
        request: Request, slug: str, action: Action, argument: str
    ) -> tuple[str, Response | None]:
        """``action`` done for the signed-in person: the kind of key it was, or the page shown
        again with the error (one about the project itself is its own error page)."""
        principal = kit.principal(request)
        try:
            key = await kit.call(action, principal, slug, argument)
        except RepolinkError as exc:
            if exc.code in PAGE_ERRORS:
                raise
            errors = FormErrors()
            errors.add(exc, {})
            return "", await show(request, slug, errors, status=kit.status_of(exc))
        return KINDS.get(key.kind, key.kind), None

    @router.get(base, include_in_schema=False)
    async def page(request: Request, slug: str) -> Response:
        return await show(request, slug)

    @router.post(base, include_in_schema=False)
    async def add(request: Request, slug: str, type: str = Form("")) -> Response:
        kind = DEPLOY_KEY if type == DEPLOY_KEY else USER_KEY
        label, failed = await act(request, slug, kit.app.checkout_key_access.create, kind)
        if failed is not None:
            return failed
        notice = f"New {label} added."
        if kind == DEPLOY_KEY:
            notice += " It is pending: add it to the repository, then delete the old deploy key."
        else:
            notice += " Fetches use it now: add its public key to your account on the host."
        return kit.redirect(paths.project(slug, "settings", "checkout-keys"), notice=notice)

    @router.get(f"{base}/{{fingerprint}}/delete", include_in_schema=False)
    async def delete_question(request: Request, slug: str, fingerprint: str) -> Response:
        """The confirmation page of a key's delete; ``fingerprint``: its MD5 colon-hex (no
        ``/`` in it, unlike a SHA256 one, so it is one path segment)."""
        principal = kit.principal(request)
        key = asked_about(
            await kit.call(kit.app.checkout_key_access.list, principal, slug),
            lambda key: fingerprint in (key.md5_hex, key.fingerprint_sha256),
            NotFound(
                "checkout_key_not_found",
                "there is no such checkout key in this project",
                "go back to the project's Checkout keys and pick one from the list",
            ),
        )
        kind = KINDS.get(key.kind, key.kind)
        own = key.owner_user_id is not None and key.owner_user_id == principal.user_id
        if key.kind == DEPLOY_KEY and not key.pending:
            then = "With a new deploy key pending, this switches fetches to it after a test fetch."
        else:
            then = "Its key pair is erased; fetches use the preferred key of those left."
        return await confirm_project_page(
            kit,
            request,
            slug,
            CHECKOUT_KEYS,
            Question(
                f"Delete the {kind}{' (yours)' if own else ''}?",
                action=paths.project(slug, "settings", "checkout-keys", "delete"),
                button=f"Delete {kind}",
                subject=key.fingerprint_sha256,
                then=then,
                fields=(("fingerprint", key.fingerprint_sha256),),
            ),
            # What the delete itself needs: a user key's own user, else an admin.
            needed=Role.MEMBER if own else Role.ADMIN,
        )

    @router.post(f"{base}/delete", include_in_schema=False)
    async def delete(request: Request, slug: str, fingerprint: str = Form("")) -> Response:
        label, failed = await act(request, slug, kit.app.checkout_key_access.delete, fingerprint)
        if failed is not None:
            return failed
        return kit.redirect(
            paths.project(slug, "settings", "checkout-keys"),
            notice=f"The {label} {fingerprint} was deleted.",
        )

    return router
