"""Who may see and do what in a project, and the project's members.

Site admins see and do everything. Anyone else sees the projects they are a member of, and
may do what their role allows (:class:`~repolink.auth.principal.Role`); a project they are no
member of is invisible (``project_not_found``, 404), an action above their role is
``role_required`` (403). Members are set and removed by the project's admins (and site
admins); a project always keeps one admin (``last_admin``, 409).
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from repolink.accounts.audit import write_entry
from repolink.accounts.info import MemberInfo
from repolink.accounts.users import get_user
from repolink.accounts.visibility import (
    allowed_project,
    project_for,
    role_in,
    site_admin_required,
)
from repolink.auth.principal import Principal, Role
from repolink.errors import Conflict, NotFound, ValidationError
from repolink.platform.projects import ProjectInfo, ProjectService, project_record
from repolink.store import Store
from repolink.store.models.accounts import ProjectMember, User
from repolink.store.models.platform import Project
from repolink.store.models.user_keys import delete_user_keys
from repolink.store.types import Clock, utcnow

log = logging.getLogger(__name__)


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise ValidationError(
            "role_invalid",
            "a role is one of " + ", ".join(role.value for role in Role),
            "choose viewer, member or admin",
        ) from None


class AccessService:
    def __init__(self, store: Store, projects: ProjectService, *, clock: Clock = utcnow) -> None:
        self._store = store
        self._projects = projects
        self._clock = clock

    # -- checks ----------------------------------------------------------------------------

    def project(self, principal: Principal, slug: str, required: Role) -> ProjectInfo:
        """The project if ``principal`` may do what needs ``required`` in it; else
        ``project_not_found`` (invisible to them) or ``role_required``."""
        # This runs before every project route of the API: one statement answers the common
        # case, a project the principal may use. Anything else (no such project, no role, too
        # low a role) takes the full check, which words the refusal.
        with self._store.reading() as connection:
            allowed = allowed_project(connection, principal, slug, required)
        if allowed is not None:
            return allowed
        with self._store.session() as session:
            return project_record(session, project_for(session, principal, slug, required))

    def role(self, principal: Principal, slug: str) -> Role:
        """The principal's role in the project (a site admin's: admin); invisible:
        ``project_not_found``."""
        with self._store.session() as session:
            project = project_for(session, principal, slug, Role.VIEWER)
            role = role_in(session, principal, project)
        assert role is not None  # project_for refused a principal with no role
        return role

    def visible_projects(self, principal: Principal) -> list[ProjectInfo]:
        """The projects ``principal`` can see, by slug."""
        projects = self._projects.list_projects()
        if principal.site_admin:
            return projects
        if principal.user_id is None:
            return []
        with self._store.session() as session:
            mine = set(
                session.scalars(
                    select(ProjectMember.project_id).where(
                        ProjectMember.user_id == principal.user_id
                    )
                )
            )
        return [project for project in projects if project.id in mine]

    def require_site_admin(self, principal: Principal) -> None:
        if not principal.site_admin:
            raise site_admin_required()

    # -- projects --------------------------------------------------------------------------

    def create_project(
        self, principal: Principal, name: str, *, slug: str | None = None
    ) -> ProjectInfo:
        """A new project whose creator (a user) is its admin."""
        now = self._clock()
        with self._store.session() as session:
            project = self._projects.add_project(session, name, slug=slug)
            if principal.user_id is not None:
                session.add(
                    ProjectMember(
                        project_id=project.id,
                        user_id=principal.user_id,
                        role=Role.ADMIN.value,
                        created_at=now,
                    )
                )
            write_entry(session, principal, "project.create", now=now, project=project)
            return project_record(session, project)

    # -- members ---------------------------------------------------------------------------

    def members(self, principal: Principal, slug: str) -> list[MemberInfo]:
        """The project's members by username (any member may see them)."""
        with self._store.session() as session:
            project = project_for(session, principal, slug, Role.VIEWER)
            rows = session.execute(
                select(User.username, ProjectMember.role, ProjectMember.created_at)
                .join(User, User.id == ProjectMember.user_id)
                .where(ProjectMember.project_id == project.id)
                .order_by(User.username)
            )
            return [MemberInfo(name, Role(role), added) for name, role, added in rows]

    def set_member(self, principal: Principal, slug: str, username: str, role: Role) -> MemberInfo:
        """Make ``username`` a member with ``role`` (or change their role)."""
        now = self._clock()
        with self._store.session() as session:
            project = project_for(session, principal, slug, Role.ADMIN)
            user = get_user(session, username)
            row = _membership(session, project, user)
            if row is None:
                row = ProjectMember(
                    project_id=project.id, user_id=user.id, role=role.value, created_at=now
                )
                session.add(row)
                before = None
            else:
                before = row.role
                row.role = role.value
                if before == Role.ADMIN.value and role is not Role.ADMIN:
                    _keep_one_admin(session, project)
            if not role.allows(Role.MEMBER):
                # A viewer holds no user key (making one needs member): theirs goes.
                delete_user_keys(session, user.id, project.id)
            write_entry(
                session,
                principal,
                "member.set",
                now=now,
                project=project,
                target=username,
                details={"role": role.value, **({"previous": before} if before else {})},
            )
            session.flush()
            info = MemberInfo(username, role, row.created_at)
        log.info("project %s: %s is %s", slug, username, role)
        return info

    def remove_member(self, principal: Principal, slug: str, username: str) -> None:
        """Remove ``username`` (and their user key) from the project; not its last admin."""
        with self._store.session() as session:
            project = project_for(session, principal, slug, Role.ADMIN)
            user = get_user(session, username)
            row = _membership(session, project, user)
            if row is None:
                raise NotFound(
                    "member_not_found",
                    f"{username!r} is not a member of project {project.slug!r}",
                    "list the project's members",
                    context={"project": project.slug, "username": username},
                )
            was_admin = row.role == Role.ADMIN.value
            session.delete(row)
            if was_admin:
                _keep_one_admin(session, project)
            # Their user key goes too: the project must not go on fetching with their access.
            delete_user_keys(session, user.id, project.id)
            write_entry(
                session,
                principal,
                "member.remove",
                now=self._clock(),
                project=project,
                target=username,
            )
        log.info("project %s: removed member %s", slug, username)


def _membership(session: Session, project: Project, user: User) -> ProjectMember | None:
    return session.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == user.id
        )
    )


def _keep_one_admin(session: Session, project: Project) -> None:
    """Refuse (rolling the change back) when the change just made leaves ``project`` with
    no admin. The change is written first and the admins counted after: two admins removing
    each other at once must not both pass a count taken before either wrote. The write takes
    SQLite's one write lock, so the count sees the other's committed change; on PostgreSQL the
    project's row is locked for the same effect."""
    session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    session.flush()
    admins = session.scalar(
        select(func.count())
        .select_from(ProjectMember)
        .where(ProjectMember.project_id == project.id, ProjectMember.role == Role.ADMIN.value)
    )
    if not admins:
        raise Conflict(
            "last_admin",
            f"this is the last admin of project {project.slug!r}",
            "make another member admin first",
            context={"project": project.slug},
        )
