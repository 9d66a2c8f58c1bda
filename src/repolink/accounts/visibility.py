"""Which project a principal may see and with which role: the one check every service of this
package (and :class:`~repolink.accounts.access.AccessService`) makes inside its transaction.

A project a principal is not a member of is invisible: the answer is the same
``project_not_found`` as for a slug no project has, word for word, so the error tells a
non-member nothing (not even a slug suggested from a project's name). A visible project and a
role too low is ``role_required``, naming the role needed.
"""

from __future__ import annotations

from sqlalchemy import Connection, Integer, bindparam, select, text
from sqlalchemy.orm import Session

from repolink.auth.principal import Principal, Role
from repolink.errors import NotFound, PermissionDenied
from repolink.platform.projects import ProjectInfo, get_project
from repolink.store.models.accounts import ProjectMember
from repolink.store.models.platform import Project
from repolink.store.types import UTCDateTime

# The project, whether it is connected, and the principal's role in it, in one statement.
# Plain SQL: building and caching an ORM statement costs more than running this one.
_PROJECT_AND_ROLE = (
    text(
        "SELECT p.id, p.name, p.slug, p.created_at, c.id AS connection_id, m.role"
        " FROM projects p"
        " LEFT JOIN repository_connections c ON c.project_id = p.id"
        " LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = :user_id"
        " WHERE p.slug = :slug"
    )
    .bindparams(bindparam("user_id", type_=Integer()))
    .columns(created_at=UTCDateTime())
)


def role_in(session: Session, principal: Principal, project: Project) -> Role | None:
    """The principal's role in ``project`` (a site admin: admin), or ``None``."""
    if principal.site_admin:
        return Role.ADMIN
    if principal.user_id is None:
        return None
    role = session.scalar(
        select(ProjectMember.role).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == principal.user_id
        )
    )
    return Role(role) if role is not None else None


def allowed_project(
    connection: Connection, principal: Principal, slug: str, required: Role
) -> ProjectInfo | None:
    """The project ``slug`` if ``principal`` may do what needs ``required`` in it, else
    ``None`` — without saying why: :func:`project_for` words the refusal."""
    if not principal.site_admin and principal.user_id is None:
        return None
    row = connection.execute(
        _PROJECT_AND_ROLE, {"slug": slug, "user_id": principal.user_id}
    ).first()
    if row is None:
        return None
    if not principal.site_admin and (row.role is None or not Role(row.role).allows(required)):
        return None
    return ProjectInfo(row.id, row.name, row.slug, row.created_at, row.connection_id is not None)


def project_for(session: Session, principal: Principal, slug: str, required: Role) -> Project:
    """The project ``slug`` if ``principal`` may do what needs ``required`` in it."""
    if principal.site_admin:
        return get_project(session, slug)
    try:
        project = get_project(session, slug)
    except NotFound:
        raise invisible_project() from None
    role = role_in(session, principal, project)
    if role is None:
        raise invisible_project()
    if not role.allows(required):
        raise role_required(required, project.slug)
    return project


def invisible_project() -> NotFound:
    return NotFound(
        "project_not_found",
        "there is no project with the slug given",
        "list the projects to see their slugs",
    )


def role_required(required: Role, slug: str) -> PermissionDenied:
    return PermissionDenied(
        "role_required",
        f"this needs the {required} role in project {slug!r}",
        f"ask an admin of the project for the {required} role",
        context={"project": slug, "role": str(required)},
    )


def site_admin_required() -> PermissionDenied:
    return PermissionDenied(
        "site_admin_required",
        "only a site admin may do this",
        "use the token of a site admin",
    )
