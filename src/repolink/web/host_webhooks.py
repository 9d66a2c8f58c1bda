"""Repository settings → Webhooks of the built-in host: which URLs hear of a push (the URL is
checked against the network policy as the API checks it, the refusal beside the field), an
optional secret that signs every delivery (write-only: a page only says whether one is set),
and each hook's recent deliveries. Site admins only."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.errors import RepolinkError
from repolink.web import paths
from repolink.web.confirm import Question, confirm_page
from repolink.web.forms import FormErrors
from repolink.web.host_repositories import host_admin, repository_context
from repolink.web.kit import PageKit

PAGE_ERRORS = ("repository_not_found", "site_admin_required", "hook_not_found")
FIELDS = {
    "hook_url_invalid": "url",
    "webhook_url_forbidden": "url",
    "hook_secret_invalid": "secret",
    "hook_description_invalid": "description",
}
# Deliveries shown per hook (the host keeps more; the newest tell whether the receiver works).
RECENT_DELIVERIES = 10


def build_host_webhook_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = f"{paths.HOST_REPOSITORIES}/{{workspace}}/{{slug}}/webhooks"

    async def hooks_page(
        request: Request,
        workspace: str,
        slug: str,
        *,
        errors: FormErrors | None = None,
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        await host_admin(kit, request)
        context = await repository_context(kit, workspace, slug)
        hooks = await kit.call(kit.app.hooks.list_hooks, workspace, slug)
        rows = [
            {
                "hook": hook,
                "deliveries": (
                    await kit.call(kit.app.hooks.list_deliveries, workspace, slug, hook.uuid)
                )[:RECENT_DELIVERIES],
            }
            for hook in hooks
        ]
        return kit.page(
            request,
            "host/webhooks.html",
            title=f"Webhooks · {context['repository'].full_name}",
            status=status,
            rows=rows,
            errors=errors or FormErrors(),
            form=form or {},
            **context,
        )

    @router.get(base, include_in_schema=False)
    async def webhooks(request: Request, workspace: str, slug: str) -> Response:
        return await hooks_page(request, workspace, slug)

    @router.post(base, include_in_schema=False)
    async def add(
        request: Request,
        workspace: str,
        slug: str,
        url: str = Form(""),
        secret: str = Form(""),
        description: str = Form(""),
    ) -> Response:
        await host_admin(kit, request)
        try:
            await kit.call(
                kit.app.hooks.add_hook,
                workspace,
                slug,
                url,
                secret=secret or None,
                description=description,
            )
        except RepolinkError as exc:
            if exc.code in PAGE_ERRORS:
                raise
            errors = FormErrors()
            errors.add(exc, FIELDS)
            # The secret is never sent back; the URL is the person's own input.
            form = {"url": url[:2048], "description": description[:200]}
            return await hooks_page(
                request, workspace, slug, errors=errors, form=form, status=kit.status_of(exc)
            )
        return kit.redirect(
            paths.host_repository(workspace, slug, "webhooks"),
            notice="Webhook added: every push to the repository is sent to it.",
        )

    @router.get(f"{base}/{{hook_uuid}}/delete", include_in_schema=False)
    async def delete_question(
        request: Request, workspace: str, slug: str, hook_uuid: str
    ) -> Response:
        await host_admin(kit, request)
        hook = await kit.call(kit.app.hooks.get_hook, workspace, slug, hook_uuid)
        return confirm_page(
            kit,
            request,
            Question(
                "Delete the webhook to this URL?",
                action=paths.host_repository(workspace, slug, "webhooks", hook_uuid, "delete"),
                button="Delete webhook",
                subject=hook.url,
                then="Pending deliveries are dropped; pushes are no longer sent to it.",
            ),
            heading=f"Repository {workspace}/{slug}",
            back=paths.host_repository(workspace, slug, "webhooks"),
        )

    @router.post(f"{base}/{{hook_uuid}}/delete", include_in_schema=False)
    async def delete(request: Request, workspace: str, slug: str, hook_uuid: str) -> Response:
        await host_admin(kit, request)
        await kit.call(kit.app.hooks.remove_hook, workspace, slug, hook_uuid)
        return kit.redirect(
            paths.host_repository(workspace, slug, "webhooks"), notice="Webhook deleted."
        )

    return router
