"""The built-in host's repositories: the list (clone URL, last push) and creating one.

The host is administered by site admins, as its API is (``app.access.require_site_admin``):
anyone else gets the 403 page ``site_admin_required`` — the host is one operator's, there is
nothing for a 404 to hide. The other host pages (access keys, account keys, webhooks) use
:func:`host_admin` and :func:`repository_context` from here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.auth.principal import Principal
from repolink.errors import RepolinkError
from repolink.host.info import RepositoryInfo
from repolink.web import paths
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit

# Which field of the create form each error is shown beside.
CREATE_FIELDS = {
    "workspace_invalid": "workspace",
    "slug_invalid": "slug",
    "repository_exists": "slug",
    "description_invalid": "description",
}
# A repository's settings pages: (label, path under its address).
REPOSITORY_NAV: tuple[tuple[str, str], ...] = (
    ("Access keys", "access-keys"),
    ("Webhooks", "webhooks"),
)


async def host_admin(kit: PageKit, request: Request) -> Principal:
    """The signed-in site admin; anyone else: ``site_admin_required`` (the 403 page)."""
    principal = kit.principal(request)
    await kit.call(kit.app.access.require_site_admin, principal)
    return principal


def clone_url(kit: PageKit, repository: RepositoryInfo) -> str | None:
    """The SSH clone URL, when this server runs the built-in SSH host."""
    if not kit.ssh_url_base:
        return None
    return f"{kit.ssh_url_base.rstrip('/')}/{repository.ssh_clone_path}"


async def repository_context(kit: PageKit, workspace: str, slug: str) -> dict[str, Any]:
    """What a repository's settings page (``host/_repository.html``) is given: the repository
    (``repository_not_found``: the 404 page), its clone URL and its settings navigation."""
    repository = await kit.call(kit.app.host.get_repository, workspace, slug)
    nav = [
        {"label": label, "href": paths.host_repository(workspace, slug, part)}
        for label, part in REPOSITORY_NAV
    ]
    return {
        "repository": repository,
        "clone_url": clone_url(kit, repository),
        "repository_nav": nav,
    }


def build_host_repository_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = paths.HOST_REPOSITORIES

    async def list_page(
        request: Request,
        *,
        errors: FormErrors | None = None,
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        await host_admin(kit, request)
        repositories = await kit.call(kit.app.host.list_all_repositories)
        rows = [
            {
                "repository": repository,
                "clone_url": clone_url(kit, repository),
                "last_push": await kit.call(kit.app.host.last_push, repository),
            }
            for repository in repositories
        ]
        return kit.page(
            request,
            "host/repositories.html",
            title="Host repositories",
            status=status,
            rows=rows,
            errors=errors or FormErrors(),
            form=form or {},
        )

    @router.get(base, include_in_schema=False)
    async def repositories(request: Request) -> Response:
        return await list_page(request)

    @router.post(base, include_in_schema=False)
    async def create(
        request: Request,
        workspace: str = Form(""),
        slug: str = Form(""),
        description: str = Form(""),
    ) -> Response:
        await host_admin(kit, request)
        try:
            created = await kit.call(
                kit.app.host.create_repository,
                workspace.strip(),
                slug.strip(),
                description=description,
            )
        except RepolinkError as exc:
            errors = FormErrors()
            errors.add(exc, CREATE_FIELDS)
            form = {"workspace": workspace[:200], "slug": slug[:200], "description": description}
            return await list_page(request, errors=errors, form=form, status=kit.status_of(exc))
        return kit.redirect(
            paths.host_repository(created.workspace, created.slug, "access-keys"),
            notice=f"Repository {created.full_name} created. Add an access key to reach it.",
        )

    return router
