"""Project settings → Webhooks (issue 12): the receiver URL of each provider with a copy
button, the webhook secret (admins: revealed on request, regenerated after a confirmation page
of its own, so no script is needed) and the recent deliveries with their outcome.

As the API's ``…/projects/{project}/webhooks``: everyone who sees the project sees the URLs
and the deliveries; only admins get the secret, which is made on their first visit (audited
``webhook_secret.create``); a regeneration is audited ``webhook_secret.rotate`` and the old
secret stops verifying at once.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from repolink.auth.principal import Role
from repolink.platform.webhooks_in import receiver_paths
from repolink.web import paths
from repolink.web.confirm import Question, confirm_project_page
from repolink.web.kit import PageKit
from repolink.web.projects import WEBHOOKS, open_project

DELIVERIES_SHOWN = 20


def build_project_webhook_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = WEBHOOKS.route

    @router.get(base, include_in_schema=False)
    async def page(request: Request, slug: str) -> Response:
        principal = kit.principal(request)
        opened = await open_project(kit, request, slug, WEBHOOKS.role)
        project, role = opened.project, opened.role
        service = kit.app.webhooks_in
        deliveries = await kit.call(service.deliveries, project.slug, limit=DELIVERIES_SHOWN)
        secret = None
        if role.allows(Role.ADMIN):
            made = await kit.call(service.secret, project.slug)
            if made.new:
                await kit.call(
                    kit.app.audit.record, principal, "webhook_secret.create", project=project.slug
                )
            secret = made
        origin = str(request.base_url).rstrip("/")
        urls = {name: origin + path for name, path in receiver_paths(project.slug).items()}
        return kit.page(
            request,
            "projects/webhooks.html",
            title=f"Webhooks · {project.name}",
            **opened.layout,
            urls=urls,
            secret=secret,
            deliveries=deliveries,
        )

    @router.get(f"{base}/secret", include_in_schema=False)
    async def regenerate_question(request: Request, slug: str) -> Response:
        return await confirm_project_page(
            kit,
            request,
            slug,
            WEBHOOKS,
            Question(
                "Make a new webhook secret?",
                action=paths.project(slug, "settings", "webhooks", "secret"),
                button="Regenerate secret",
                then="The old secret stops verifying at once: give the new one to every "
                "provider that sends this project's webhooks.",
            ),
        )

    @router.post(f"{base}/secret", include_in_schema=False)
    async def regenerate(request: Request, slug: str) -> Response:
        principal = kit.principal(request)
        project = await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
        await kit.call(kit.app.webhooks_in.regenerate_secret, project.slug)
        await kit.call(
            kit.app.audit.record, principal, "webhook_secret.rotate", project=project.slug
        )
        return kit.redirect(
            paths.project(project.slug, "settings", "webhooks"),
            notice="New webhook secret made: the old one verifies no more. Update your providers.",
        )

    return router
