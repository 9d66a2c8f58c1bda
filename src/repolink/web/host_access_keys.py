"""Repository settings → Access keys of the built-in host (Bitbucket's page of that name).

Add a key (label, the public key's text, read-only unless write is ticked) with the checks and
named errors of the API and the CLI beside the field (``key_is_private``, ``key_truncated``,
``key_putty_format``, ``access_key_duplicate`` …); list them (label, fingerprint, permission,
added, last used); change a key's label or write permission; delete one (the page asks first).
A key's text is never put back into the form after an error: what was pasted may be a private
key.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.errors import NotFound, RepolinkError
from repolink.store.ids import is_row_id
from repolink.web import paths
from repolink.web.confirm import Question, confirm_page
from repolink.web.forms import FormErrors
from repolink.web.host_repositories import host_admin, repository_context
from repolink.web.kit import PageKit

# Errors that are not about the form: their own page (404, 403).
PAGE_ERRORS = ("repository_not_found", "site_admin_required", "access_key_not_found")
# Errors about the key beside the key field, besides every ``key_*`` code of the key checks.
KEY_ERRORS = ("access_key_duplicate",)
LABEL_ERRORS = ("label_invalid",)


def key_field_of(code: str, key_errors: tuple[str, ...] = KEY_ERRORS) -> str:
    """The add form's field an error is shown beside."""
    if code in LABEL_ERRORS:
        return "label"
    if code.startswith("key_") or code in key_errors:
        return "key"
    return "_form"


def parse_key_id(text: str, kind: str = "access") -> int:
    """A key's id from the address; anything else is the 404 page ``{kind}_key_not_found``."""
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or not is_row_id(int(text)):
        raise key_not_found(kind)
    return int(text)


def key_not_found(kind: str = "access") -> NotFound:
    """The 404 page's error of a ``kind`` key that is not there."""
    return NotFound(
        f"{kind}_key_not_found",
        f"there is no such {kind} key",
        f"go back to the list of {kind} keys and pick one from it",
    )


def build_host_access_key_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = f"{paths.HOST_REPOSITORIES}/{{workspace}}/{{slug}}/access-keys"

    async def keys_page(
        request: Request,
        workspace: str,
        slug: str,
        *,
        errors: FormErrors | None = None,
        label: str = "",
        writable: bool = False,
        status: int = 200,
    ) -> Response:
        await host_admin(kit, request)
        context = await repository_context(kit, workspace, slug)
        keys = await kit.call(kit.app.host.list_access_keys, workspace, slug)
        return kit.page(
            request,
            "host/access_keys.html",
            title=f"Access keys · {context['repository'].full_name}",
            status=status,
            keys=keys,
            errors=errors or FormErrors(),
            label=label,
            writable=writable,
            **context,
        )

    async def key_page(
        request: Request,
        workspace: str,
        slug: str,
        access_key_id: str,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        await host_admin(kit, request)
        context = await repository_context(kit, workspace, slug)
        key = await kit.call(
            kit.app.host.get_access_key, workspace, slug, parse_key_id(access_key_id)
        )
        return kit.page(
            request,
            "host/access_key.html",
            title=f"Access key {key.label} · {key.repository_full_name}",
            status=status,
            key=key,
            errors=errors or FormErrors(),
            **context,
        )

    @router.get(base, include_in_schema=False)
    async def access_keys(request: Request, workspace: str, slug: str) -> Response:
        return await keys_page(request, workspace, slug)

    @router.post(base, include_in_schema=False)
    async def add(
        request: Request,
        workspace: str,
        slug: str,
        label: str = Form(""),
        key: str = Form(""),
        writable: str = Form(""),
    ) -> Response:
        await host_admin(kit, request)
        write = writable == "on"
        try:
            added = await kit.call(
                kit.app.host.add_access_key, workspace, slug, key, label=label, writable=write
            )
        except RepolinkError as exc:
            if exc.code in PAGE_ERRORS:
                raise
            errors = FormErrors()
            errors.add(exc, {exc.code: key_field_of(exc.code)})
            return await keys_page(
                request,
                workspace,
                slug,
                errors=errors,
                label=label[:200],
                writable=write,
                status=kit.status_of(exc),
            )
        permission = "read and write" if not added.read_only else "read-only"
        return kit.redirect(
            paths.host_repository(workspace, slug, "access-keys"),
            notice=f"Access key {added.label} added ({permission}).",
        )

    @router.get(f"{base}/{{access_key_id}}", include_in_schema=False)
    async def edit(request: Request, workspace: str, slug: str, access_key_id: str) -> Response:
        return await key_page(request, workspace, slug, access_key_id)

    @router.post(f"{base}/{{access_key_id}}", include_in_schema=False)
    async def update(
        request: Request,
        workspace: str,
        slug: str,
        access_key_id: str,
        label: str = Form(""),
        writable: str = Form(""),
    ) -> Response:
        await host_admin(kit, request)
        try:
            changed = await kit.call(
                kit.app.host.update_access_key,
                workspace,
                slug,
                parse_key_id(access_key_id),
                label=label,
                writable=writable == "on",
            )
        except RepolinkError as exc:
            if exc.code in PAGE_ERRORS:
                raise
            errors = FormErrors()
            errors.add(exc, {exc.code: key_field_of(exc.code)})
            return await key_page(
                request, workspace, slug, access_key_id, errors=errors, status=kit.status_of(exc)
            )
        return kit.redirect(
            paths.host_repository(workspace, slug, "access-keys"),
            notice=f"Access key {changed.label} saved.",
        )

    @router.get(f"{base}/{{access_key_id}}/delete", include_in_schema=False)
    async def delete_question(
        request: Request, workspace: str, slug: str, access_key_id: str
    ) -> Response:
        await host_admin(kit, request)
        key = await kit.call(
            kit.app.host.get_access_key, workspace, slug, parse_key_id(access_key_id)
        )
        return confirm_page(
            kit,
            request,
            Question(
                f"Delete the access key {key.label}?",
                action=paths.host_repository(
                    workspace, slug, "access-keys", access_key_id, "delete"
                ),
                button="Delete access key",
                subject=key.fingerprint_sha256,
                then=f"The machine using it can no longer reach {key.repository_full_name}.",
            ),
            heading=f"Repository {key.repository_full_name}",
            back=paths.host_repository(workspace, slug, "access-keys"),
        )

    @router.post(f"{base}/{{access_key_id}}/delete", include_in_schema=False)
    async def delete(request: Request, workspace: str, slug: str, access_key_id: str) -> Response:
        await host_admin(kit, request)
        removed = await kit.call(
            kit.app.host.remove_access_key, workspace, slug, parse_key_id(access_key_id)
        )
        return kit.redirect(
            paths.host_repository(workspace, slug, "access-keys"),
            notice=f"Access key {removed.label} deleted: it reaches the repository no more.",
        )

    return router
