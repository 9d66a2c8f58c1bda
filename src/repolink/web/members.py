"""A project's members: every member sees the list; its admins add people by username with a
role, change a role and remove a member. The service keeps one admin (``last_admin``); that
refusal, like every other, is shown beside the control that caused it."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.accounts.access import parse_role
from repolink.auth.principal import Role
from repolink.errors import NotFound, RepolinkError
from repolink.web import paths
from repolink.web.confirm import Question, asked_about, confirm_project_page
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit
from repolink.web.projects import MEMBERS, open_project

ROLES = tuple(role.value for role in Role)
# Which field of the add form each error is shown beside.
ADD_FIELDS = {"user_not_found": "username", "username_invalid": "username", "role_invalid": "role"}


def build_member_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = MEMBERS.route

    async def members_page(
        request: Request,
        slug: str,
        *,
        errors: FormErrors | None = None,
        row_errors: dict[str, FormErrors] | None = None,
        username: str = "",
        status: int = 200,
    ) -> Response:
        principal = kit.principal(request)
        opened = await open_project(kit, request, slug, MEMBERS.role)
        project = opened.project
        members = await kit.call(kit.app.access.members, principal, slug)
        return kit.page(
            request,
            "projects/members.html",
            title=f"Members · {project.name}",
            status=status,
            **opened.layout,
            members=members,
            roles=ROLES,
            errors=errors or FormErrors(),
            row_errors=row_errors or {},
            username=username,
        )

    @router.get(base, include_in_schema=False)
    async def members(request: Request, slug: str) -> Response:
        return await members_page(request, slug)

    @router.post(base, include_in_schema=False)
    async def add_member(
        request: Request, slug: str, username: str = Form(""), role: str = Form("")
    ) -> Response:
        principal = kit.principal(request)
        name = username.strip()
        try:
            await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
            added = await kit.call(
                kit.app.access.set_member, principal, slug, name, parse_role(role)
            )
        except RepolinkError as exc:
            if exc.code in ("project_not_found", "role_required"):
                raise
            errors = FormErrors()
            errors.add(exc, ADD_FIELDS, default="username")
            return await members_page(
                request, slug, errors=errors, username=name[:64], status=kit.status_of(exc)
            )
        return kit.redirect(
            paths.project(slug, "members"), notice=f"{added.username} is {added.role.value}."
        )

    @router.post(f"{base}/{{username}}/role", include_in_schema=False)
    async def change_role(
        request: Request, slug: str, username: str, role: str = Form("")
    ) -> Response:
        principal = kit.principal(request)
        try:
            await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
            changed = await kit.call(
                kit.app.access.set_member, principal, slug, username, parse_role(role)
            )
        except RepolinkError as exc:
            return await _row_error(exc, username, slug, request)
        return kit.redirect(
            paths.project(slug, "members"), notice=f"{changed.username} is {changed.role.value}."
        )

    @router.get(f"{base}/{{username}}/remove", include_in_schema=False)
    async def remove_question(request: Request, slug: str, username: str) -> Response:
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
        asked_about(
            await kit.call(kit.app.access.members, principal, slug),
            lambda member: member.username == username,
            NotFound(
                "member_not_found",
                "there is no such member of this project",
                "go back to the project's members and pick one from the list",
            ),
        )
        return await confirm_project_page(
            kit,
            request,
            slug,
            MEMBERS,
            Question(
                f"Remove {username} from this project?",
                action=paths.project(slug, "members", username, "remove"),
                button="Remove member",
                then="They no longer see the project; their user key here, if any, is deleted.",
            ),
        )

    @router.post(f"{base}/{{username}}/remove", include_in_schema=False)
    async def remove_member(request: Request, slug: str, username: str) -> Response:
        principal = kit.principal(request)
        try:
            await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
            await kit.call(kit.app.access.remove_member, principal, slug, username)
        except RepolinkError as exc:
            return await _row_error(exc, username, slug, request)
        return kit.redirect(
            paths.project(slug, "members"), notice=f"{username} is no longer a member."
        )

    async def _row_error(
        exc: RepolinkError, username: str, slug: str, request: Request
    ) -> Response:
        if exc.code in ("project_not_found", "role_required"):
            raise exc
        errors = FormErrors()
        errors.add(exc, default="role")
        return await members_page(
            request, slug, row_errors={username: errors}, status=kit.status_of(exc)
        )

    return router
