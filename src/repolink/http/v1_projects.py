"""The platform API's projects and their members, under ``/api/v1/projects``.

Every route authenticates first (:func:`repolink.http.auth.principal_route_class`), then asks
:attr:`Repolink.access` whether the caller may do it: a project the caller is no member of is
``project_not_found`` (404) whatever exists, an action above the caller's role is
``role_required`` (403). Reading takes a viewer, renaming, deleting and members an admin; any
user may create a project, and becomes its admin.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Path, Response

from repolink.auth.principal import Principal, Role
from repolink.http.auth import bearer_scheme, current_principal, principal_route_class
from repolink.http.v1_schemas import (
    MemberList,
    MemberOut,
    MemberSet,
    ProjectCreate,
    ProjectList,
    ProjectOut,
    ProjectUpdate,
    member_out,
    project_out,
)
from repolink.platform.projects import MAX_SLUG_LENGTH

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

Caller = Annotated[Principal, Depends(current_principal)]
ProjectSlug = Annotated[
    str, Path(min_length=1, max_length=MAX_SLUG_LENGTH, description="the project's slug")
]
Username = Annotated[str, Path(min_length=1, max_length=200, description="a user's name")]


def build_projects_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """``/api/v1/projects``: list, create, show, rename, delete; members."""
    access = application.access
    router = APIRouter(
        prefix=API_PREFIX,
        route_class=principal_route_class(application),
        dependencies=[bearer_scheme()],
        tags=["projects"],
    )

    @router.get("/projects", response_model=ProjectList)
    def list_projects(caller: Caller) -> ProjectList:
        """The projects the caller can see (a site admin: every one), by slug."""
        return ProjectList(items=[project_out(p) for p in access.visible_projects(caller)])

    @router.post("/projects", response_model=ProjectOut, status_code=201)
    def create_project(caller: Caller, body: ProjectCreate, response: Response) -> ProjectOut:
        """A new project (its slug made from the name unless given); its creator is its admin."""
        info = access.create_project(caller, body.name, slug=body.slug)
        response.headers["Location"] = f"{API_PREFIX}/projects/{info.slug}"
        return project_out(info)

    @router.get("/projects/{slug}", response_model=ProjectOut)
    def get_project(caller: Caller, slug: ProjectSlug) -> ProjectOut:
        return project_out(access.project(caller, slug, Role.VIEWER))

    @router.patch("/projects/{slug}", response_model=ProjectOut)
    def update_project(caller: Caller, slug: ProjectSlug, body: ProjectUpdate) -> ProjectOut:
        """Rename the project (admin); its slug stays."""
        info = access.project(caller, slug, Role.ADMIN)
        if body.name is None:
            return project_out(info)
        renamed = application.projects.rename_project(slug, body.name)
        application.audit.record(caller, "project.rename", project=slug)
        return project_out(renamed)

    @router.delete("/projects/{slug}", status_code=204)
    def delete_project(caller: Caller, slug: ProjectSlug) -> Response:
        """Delete the project with its connection, commit index, mirror and keys (admin)."""
        access.project(caller, slug, Role.ADMIN)
        application.projects.delete_project(slug)
        application.audit.record(caller, "project.delete", project=slug)
        return Response(status_code=204)

    @router.get("/projects/{slug}/members", response_model=MemberList)
    def list_members(caller: Caller, slug: ProjectSlug) -> MemberList:
        return MemberList(items=[member_out(m) for m in access.members(caller, slug)])

    @router.put("/projects/{slug}/members/{username}", response_model=MemberOut)
    def set_member(
        caller: Caller, slug: ProjectSlug, username: Username, body: MemberSet
    ) -> MemberOut:
        """Make a user a member with a role, or change their role (admin)."""
        return member_out(access.set_member(caller, slug, username, body.role))

    @router.delete("/projects/{slug}/members/{username}", status_code=204)
    def remove_member(caller: Caller, slug: ProjectSlug, username: Username) -> Response:
        """Remove a member (admin); a project keeps at least one admin."""
        access.remove_member(caller, slug, username)
        return Response(status_code=204)

    return router
