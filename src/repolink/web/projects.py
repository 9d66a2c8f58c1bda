"""Projects: the list (the home page), create one, and a project's overview with its Settings
navigation (:data:`SETTINGS_NAV`: the pages of one project, which their modules fill in)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.auth.principal import Role
from repolink.errors import RepolinkError
from repolink.web import paths
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit

# A project's pages beyond its overview: (label, path under /ui/projects/SLUG, role needed).
PROJECT_NAV: tuple[tuple[str, str, Role], ...] = (
    ("Commits", "commits", Role.VIEWER),
    ("Create execution", "executions/new", Role.VIEWER),
)
SETTINGS_NAV: tuple[tuple[str, str, Role], ...] = (
    ("Repository", "settings/repository", Role.VIEWER),
    ("SSH keys", "settings/keys", Role.VIEWER),
    ("Webhooks", "settings/webhooks", Role.ADMIN),
    ("Checkout keys", "settings/checkout-keys", Role.VIEWER),
    ("Fetch history", "settings/fetches", Role.VIEWER),
    ("Audit log", "settings/audit", Role.ADMIN),
    ("Members", "members", Role.VIEWER),
)
# Which field each error of project creation is shown beside.
CREATE_FIELDS = {
    "project_name_invalid": "name",
    "project_slug_invalid": "slug",
    "project_slug_reserved": "slug",
    "project_exists": "slug",
}


def project_nav(slug: str, role: Role) -> list[dict[str, str]]:
    """The project's navigation entries ``role`` may open: label and address."""
    return [
        {"label": label, "href": paths.project(slug, *path.split("/")), "section": section}
        for section, entries in (("project", PROJECT_NAV), ("settings", SETTINGS_NAV))
        for label, path, needed in entries
        if role.allows(needed)
    ]


def build_project_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)

    @router.get(paths.HOME, include_in_schema=False)
    async def project_list(request: Request) -> Response:
        principal = kit.principal(request)
        projects = await kit.call(kit.app.access.visible_projects, principal)
        return kit.page(request, "projects/list.html", title="Projects", projects=projects)

    def create_form(
        request: Request, errors: FormErrors, name: str = "", slug: str = "", status: int = 200
    ) -> Response:
        return kit.page(
            request,
            "projects/new.html",
            title="New project",
            status=status,
            errors=errors,
            name=name,
            slug=slug,
        )

    @router.get(f"{paths.HOME}/new", include_in_schema=False)
    async def new_project(request: Request) -> Response:
        return create_form(request, FormErrors())

    @router.post(f"{paths.HOME}/new", include_in_schema=False)
    async def create_project(
        request: Request, name: str = Form(""), slug: str = Form("")
    ) -> Response:
        principal = kit.principal(request)
        try:
            project = await kit.call(
                kit.app.access.create_project, principal, name, slug=slug.strip() or None
            )
        except RepolinkError as exc:
            errors = FormErrors()
            errors.add(exc, CREATE_FIELDS, default="name")
            return create_form(
                request, errors, name=name[:200], slug=slug[:100], status=kit.status_of(exc)
            )
        return kit.redirect(
            paths.project(project.slug), notice=f"Project {project.name} is created."
        )

    @router.get(f"{paths.PREFIX}/projects/{{slug}}", include_in_schema=False)
    async def overview(request: Request, slug: str) -> Response:
        principal = kit.principal(request)
        project = await kit.call(kit.app.access.project, principal, slug, Role.VIEWER)
        role = await kit.call(kit.app.access.role, principal, slug)
        return kit.page(
            request,
            "projects/overview.html",
            title=project.name,
            project=project,
            role=role,
            nav=project_nav(project.slug, role),
        )

    return router
