"""Project settings → Checkout keys (CircleCI's page of that name, issue 12).

Add a deploy key (admins: a key rotation starts, the new key pending until it is proven) or a
user key of the signed-in user (members); the list shows each key's MD5 and SHA256
fingerprints, which one fetches use ("preferred"), and its public key with a copy button — what
CircleCI's article sends people into the browser's developer tools for. A user key is deleted by
its user or an admin, a deploy key by an admin; the page asks first. Every action is
:class:`~repolink.accounts.checkout_key_access.CheckoutKeyAccess`'s, as the API's: the same
roles, the same audit entries. A private key is never part of the page.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.auth.principal import Principal, Role
from repolink.errors import RepolinkError
from repolink.platform.checkout_keys import DEPLOY_KEY, USER_KEY, CheckoutKeyInfo
from repolink.web import paths
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit
from repolink.web.projects import project_nav

# Errors that are not about the form: their own page (404, 403).
PAGE_ERRORS = ("project_not_found", "role_required")
Action = Callable[[Principal, str, str], CheckoutKeyInfo]
KINDS = {DEPLOY_KEY: "deploy key", USER_KEY: "user key"}


def build_checkout_key_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = f"{paths.PREFIX}/projects/{{slug}}/settings/checkout-keys"

    async def show(
        request: Request, slug: str, errors: FormErrors | None = None, status: int = 200
    ) -> Response:
        principal = kit.principal(request)
        project = await kit.call(kit.app.access.project, principal, slug, Role.VIEWER)
        role = await kit.call(kit.app.access.role, principal, project.slug)
        keys = await kit.call(kit.app.checkout_key_access.list, principal, project.slug)
        return kit.page(
            request,
            "projects/checkout_keys.html",
            title=f"Checkout keys · {project.name}",
            status=status,
            project=project,
            role=role,
            nav=project_nav(project.slug, role),
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
