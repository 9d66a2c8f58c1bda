"""Projects: the list (the home page), create one, and a project's overview with its
navigation (:data:`PROJECT_PAGES`: the pages of one project, which their modules fill in, each
opened with :func:`open_project` at its page's role)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.auth.principal import Role
from repolink.errors import RepolinkError
from repolink.platform.projects import ProjectInfo
from repolink.web import paths
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit


@dataclass(frozen=True)
class ProjectPage:
    """A page of one project beyond its overview: its label in the project's navigation, its
    address under ``/ui/projects/SLUG``, the navigation's section, and the least role that
    opens it — the one value its handler checks (:func:`open_project`) and the navigation
    reads, so a link is shown exactly to those the page admits."""

    label: str
    path: str
    role: Role
    section: str = "settings"

    @property
    def route(self) -> str:
        """The page's route, with the ``{slug}`` parameter."""
        return f"{paths.PREFIX}/projects/{{slug}}/{self.path}"

    def href(self, slug: str) -> str:
        return paths.project(slug, *self.path.split("/"))


COMMITS = ProjectPage("Commits", "commits", Role.VIEWER, "project")
EXECUTIONS = ProjectPage("Create execution", "executions/new", Role.VIEWER, "project")
REPOSITORY = ProjectPage("Repository", "settings/repository", Role.VIEWER)
KEYS = ProjectPage("SSH keys", "settings/keys", Role.VIEWER)
WEBHOOKS = ProjectPage("Webhooks", "settings/webhooks", Role.VIEWER)
CHECKOUT_KEYS = ProjectPage("Checkout keys", "settings/checkout-keys", Role.VIEWER)
FETCHES = ProjectPage("Fetch history", "settings/fetches", Role.VIEWER)
AUDIT = ProjectPage("Audit log", "settings/audit", Role.ADMIN)
MEMBERS = ProjectPage("Members", "members", Role.VIEWER)
# The project's navigation, in order.
PROJECT_PAGES: tuple[ProjectPage, ...] = (
    COMMITS,
    EXECUTIONS,
    REPOSITORY,
    KEYS,
    WEBHOOKS,
    CHECKOUT_KEYS,
    FETCHES,
    AUDIT,
    MEMBERS,
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
        {"label": page.label, "href": page.href(slug), "section": page.section}
        for page in PROJECT_PAGES
        if role.allows(page.role)
    ]


@dataclass(frozen=True)
class OpenedProject:
    """A project as a page of it is shown: the project, the role of who is looking, and what
    the project layout (``projects/_layout.html``) needs of them."""

    project: ProjectInfo
    role: Role

    @property
    def layout(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "role": self.role,
            "nav": project_nav(self.project.slug, self.role),
        }


async def open_project(kit: PageKit, request: Request, slug: str, needed: Role) -> OpenedProject:
    """The project ``slug`` for the person signed in, if their role is at least ``needed``
    (a page's :attr:`ProjectPage.role`); else the service's ``project_not_found`` or
    ``role_required``, which the route shows as its 404 or 403 page."""
    principal = kit.principal(request)
    project = await kit.call(kit.app.access.project, principal, slug, needed)
    role = await kit.call(kit.app.access.role, principal, project.slug)
    return OpenedProject(project, role)


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
