"""Account keys of a workspace of the built-in host: a person's key that reads and pushes to
every repository of the workspace. Same shape as the access keys' page: add (label and key,
the key checks' named errors beside the field, the pasted text never shown back), list (label,
fingerprint, added, last used), delete after a confirmation. Site admins only."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.errors import RepolinkError
from repolink.web import paths
from repolink.web.confirm import Question, asked_about, confirm_page
from repolink.web.forms import FormErrors
from repolink.web.host_access_keys import key_field_of, key_not_found, parse_key_id
from repolink.web.host_repositories import host_admin
from repolink.web.kit import PageKit

PAGE_ERRORS = ("workspace_not_found", "site_admin_required", "account_key_not_found")
KEY_ERRORS = ("account_key_duplicate",)


def build_host_account_key_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = f"{paths.PREFIX}/host/workspaces/{{workspace}}/account-keys"

    async def keys_page(
        request: Request,
        workspace: str,
        *,
        errors: FormErrors | None = None,
        label: str = "",
        status: int = 200,
    ) -> Response:
        await host_admin(kit, request)
        space = await kit.call(kit.app.host.get_workspace, workspace)
        keys = await kit.call(kit.app.host.list_account_keys, workspace)
        repositories = await kit.call(kit.app.host.list_repositories, workspace)
        return kit.page(
            request,
            "host/account_keys.html",
            title=f"Account keys · {space.name}",
            status=status,
            workspace=space,
            keys=keys,
            repositories=repositories,
            errors=errors or FormErrors(),
            label=label,
        )

    @router.get(base, include_in_schema=False)
    async def account_keys(request: Request, workspace: str) -> Response:
        return await keys_page(request, workspace)

    @router.post(base, include_in_schema=False)
    async def add(
        request: Request, workspace: str, label: str = Form(""), key: str = Form("")
    ) -> Response:
        await host_admin(kit, request)
        # Only an existing workspace has this page: adding must not create another.
        await kit.call(kit.app.host.get_workspace, workspace)
        try:
            added = await kit.call(kit.app.host.add_account_key, workspace, key, label=label)
        except RepolinkError as exc:
            if exc.code in PAGE_ERRORS:
                raise
            errors = FormErrors()
            errors.add(exc, {exc.code: key_field_of(exc.code, KEY_ERRORS)})
            return await keys_page(
                request, workspace, errors=errors, label=label[:200], status=kit.status_of(exc)
            )
        return kit.redirect(
            paths.host_workspace(workspace, "account-keys"),
            notice=f"Account key {added.label} added: it reads and pushes to every repository "
            f"of {workspace}.",
        )

    @router.get(f"{base}/{{account_key_id}}/delete", include_in_schema=False)
    async def delete_question(request: Request, workspace: str, account_key_id: str) -> Response:
        await host_admin(kit, request)
        wanted = parse_key_id(account_key_id, "account")
        key = asked_about(
            await kit.call(kit.app.host.list_account_keys, workspace),
            lambda key: key.id == wanted,
            key_not_found("account"),
        )
        return confirm_page(
            kit,
            request,
            Question(
                f"Delete the account key {key.label}?",
                action=paths.host_workspace(workspace, "account-keys", account_key_id, "delete"),
                button="Delete account key",
                subject=key.fingerprint_sha256,
                then=f"It can no longer reach the repositories of {workspace}.",
            ),
            heading=f"Workspace {workspace}",
            back=paths.host_workspace(workspace, "account-keys"),
        )

    @router.post(f"{base}/{{account_key_id}}/delete", include_in_schema=False)
    async def delete(request: Request, workspace: str, account_key_id: str) -> Response:
        await host_admin(kit, request)
        removed = await kit.call(
            kit.app.host.remove_account_key, workspace, parse_key_id(account_key_id, "account")
        )
        return kit.redirect(
            paths.host_workspace(workspace, "account-keys"),
            notice=f"Account key {removed.label} deleted.",
        )

    return router
