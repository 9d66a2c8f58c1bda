"""Projects: a name and a unique slug; each may have one repository connection.

:class:`ProjectService` is what adapters call; :func:`get_project` is the look-up the other
platform services share inside their own transactions.

The ORM is imported inside the functions that use it: listing the projects is one plain read
(:meth:`repolink.store.Store.plain`), and `repolink project list` must not pay ~0.3 s of
SQLAlchemy imports for it (issue 10 §2).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from repolink.errors import Conflict, NotFound, ValidationError, quotable
from repolink.git import mirrors
from repolink.settings import Settings
from repolink.store.clock import Clock, utcnow
from repolink.store.plain import utc_datetime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from repolink.store import Store
    from repolink.store.models.platform import Project

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200
MAX_SLUG_LENGTH = 62
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,60}[a-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")

# The subcommand names of the command groups that take a project (``repolink commits list``,
# ``repolink repo show`` …): a project called so could not be told from the command — a project
# "list" broke ``repolink commits list``. The platform names no CLI command, so the names are
# written here; tests/cli/test_reserved_slugs.py walks the real command tree and fails when a
# new subcommand is missing.
RESERVED_SLUGS = frozenset(
    {
        "add",
        "connect",
        "create",
        "delete",
        "disconnect",
        "generate",
        "hide",
        "inspect",
        "list",
        "poll",
        "register",
        "remove",
        "rotate",
        "rotate-secret",
        "serve",
        "show",
        "token",
        "unhide",
        "user",
        "which",
    }
)
# The slug of a name with no letter or digit in it ("日本語", "!!!").
UNTITLED_SLUG = "untitled"


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    name: str
    slug: str
    created_at: datetime
    connected: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "slug": self.slug,
            "created_at": self.created_at.isoformat(),
            "connected": self.connected,
        }


def slugify(name: str) -> str:
    """A slug made from a name: ``"My API Server"`` → ``my-api-server``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")[:MAX_SLUG_LENGTH].strip("-")


def check_name(name: str) -> str:
    """``name`` without surrounding blanks when it is 1–200 printable characters on one line,
    else ``project_name_invalid``."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH or _CONTROL.search(cleaned):
        raise ValidationError(
            "project_name_invalid",
            f"a project name is 1 to {MAX_NAME_LENGTH} printable characters on one line "
            f"(got {len(cleaned)} characters)",
            "give the project a short name, such as 'API server'",
        )
    return cleaned


def check_slug(slug: str) -> str:
    """``slug`` when it is 1–62 of a-z, 0-9 and inner '-', else ``project_slug_invalid``."""
    if _SLUG.fullmatch(slug):
        return slug
    shown = f" {slug!r}" if len(slug) <= MAX_SLUG_LENGTH and slug.isprintable() else ""
    raise ValidationError(
        "project_slug_invalid",
        f"the project slug{shown} is not 1–{MAX_SLUG_LENGTH} lower-case letters, digits and "
        "inner '-'",
        "choose a slug like api-server",
    )


class ProjectService:
    """Projects: create, list, show, rename, delete. Each method is one transaction (deleting a
    project also removes its mirror, after the transaction)."""

    def __init__(self, settings: Settings, store: Store, *, clock: Clock = utcnow) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock

    def create_project(self, name: str, *, slug: str | None = None) -> ProjectInfo:
        """A new project; its slug is made from the name unless given."""
        with self._store.session() as session:
            return _info(self.add_project(session, name, slug=slug), connected=False)

    def add_project(self, session: Session, name: str, *, slug: str | None = None) -> Project:
        """:meth:`create_project` inside the caller's transaction (which may add to it, as the
        creator's membership is added in the same one)."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from repolink.store.models.platform import Project, new_id

        cleaned = check_name(name)
        chosen = check_slug(slug if slug is not None else slugify(cleaned) or UNTITLED_SLUG)
        if chosen in RESERVED_SLUGS:
            raise _slug_reserved(chosen, given=slug is not None)
        if session.scalar(select(Project.id).where(Project.slug == chosen)) is not None:
            raise _slug_taken(chosen)
        row = Project(id=new_id(), name=cleaned, slug=chosen, created_at=self._clock())
        session.add(row)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise _slug_taken(chosen) from None
        log.info("created project %s", chosen)
        return row

    def list_projects(self) -> list[ProjectInfo]:
        """Every project, by slug."""
        with self._store.plain() as db:
            rows = db.rows(_LIST_PROJECTS)
        return [
            ProjectInfo(
                row["id"],
                row["name"],
                row["slug"],
                utc_datetime(row["created_at"]),
                bool(row["connected"]),
            )
            for row in rows
        ]

    def project_info(self, slug: str) -> ProjectInfo:
        """The project with this slug, or ``project_not_found``."""
        with self._store.session() as session:
            return project_record(session, get_project(session, slug))

    def rename_project(self, slug: str, name: str) -> ProjectInfo:
        """Give the project a new name; its slug, by which everything names it, stays."""
        cleaned = check_name(name)
        with self._store.session() as session:
            row = get_project(session, slug)
            row.name = cleaned
            info = project_record(session, row)
        log.info("renamed project %s", slug)
        return info

    def delete_project(self, slug: str) -> None:
        """Delete the project, its connection, commit index, mirror and every key it owned.

        The rows go in one transaction; the mirror is removed after it, so no database lock
        is held while a fetch of that mirror is waited for.
        """
        from sqlalchemy import delete, select

        from repolink.store.models.keys import KeyRecord
        from repolink.store.models.platform import Project, RepositoryConnection
        from repolink.store.models.platform_keys import AdditionalKey
        from repolink.store.models.prepared_keys import PreparedDeployKey
        from repolink.store.models.rotation import connection_key_ids
        from repolink.store.models.user_keys import user_key_record_ids

        with self._store.session() as session:
            project = get_project(session, slug)
            connection = session.scalar(
                select(RepositoryConnection).where(RepositoryConnection.project_id == project.id)
            )
            connection_id = connection.id if connection is not None else None
            owned_keys = connection_key_ids(session, connection) if connection is not None else []
            owned_keys += session.scalars(
                select(AdditionalKey.key_record_id).where(AdditionalKey.project_id == project.id)
            )
            owned_keys += user_key_record_ids(session, project.id)
            owned_keys += session.scalars(
                select(PreparedDeployKey.key_record_id).where(
                    PreparedDeployKey.project_id == project.id
                )
            )
            # The connection (its commits, refs and rotations) goes with the project, by cascade.
            session.execute(delete(Project).where(Project.id == project.id))
            session.execute(delete(KeyRecord).where(KeyRecord.id.in_(owned_keys)))
        if connection_id is not None:
            remove_mirror(self._settings, connection_id)
        log.info("deleted project %s", slug)


def get_project(session: Session, slug: str) -> Project:
    """The project with this slug, or ``project_not_found`` (for the platform's services,
    inside their transaction).

    A project is found by its slug only: a name need not be unique. When the text given is the
    name of a project, the error says that project's slug, since that is the likely mistake.
    """
    from sqlalchemy import select

    from repolink.store.models.platform import Project

    row = (
        session.scalar(select(Project).where(Project.slug == slug))
        if _SLUG.fullmatch(slug)
        else None
    )
    if row is None:
        raise _project_not_found(session, slug)
    return row


def project_record(session: Session, row: Project) -> ProjectInfo:
    """What adapters see of a project row (inside the caller's transaction)."""
    from sqlalchemy import select

    from repolink.store.models.platform import RepositoryConnection

    connected = session.scalar(
        select(RepositoryConnection.id).where(RepositoryConnection.project_id == row.id)
    )
    return _info(row, connected=connected is not None)


def _project_not_found(session: Session, given: str) -> NotFound:
    from sqlalchemy import func, select

    from repolink.store.models.platform import Project

    shown = given if _SLUG.fullmatch(given) else quotable(given, limit=MAX_NAME_LENGTH)
    if shown is None:  # never echoed: it may be key material pasted in the wrong place
        return NotFound(
            "project_not_found",
            "there is no project with the slug given",
            "list the projects to see their slugs",
        )
    named = session.scalars(
        select(Project.slug).where(func.lower(Project.name) == shown.lower()).order_by(Project.slug)
    ).all()
    if not named:
        return NotFound(
            "project_not_found",
            f"there is no project {shown!r}",
            "list the projects to see their slugs",
            context={"project": shown},
        )
    slugs = ", ".join(named)
    return NotFound(
        "project_not_found",
        f"there is no project with the slug {shown!r}",
        f"the project named {shown!r} has the slug {slugs}; a project is named by its slug"
        if len(named) == 1
        else f"the projects named {shown!r} have the slugs {slugs}; a project is named by its slug",
        reason="name_given",
        context={"project": shown, "slug": named[0], "slugs": slugs},
    )


def remove_mirror(settings: Settings, connection_id: str) -> None:
    """Remove the mirror of a connection whose rows are gone (outside any transaction: it
    waits for a fetch of that mirror to end)."""
    mirrors.remove(mirrors.mirror_path(settings, connection_id), timeout=2 * settings.git_timeout)


def _slug_reserved(slug: str, *, given: bool) -> ValidationError:
    made = "" if given else " (made from the project's name)"
    return ValidationError(
        "project_slug_reserved",
        f"the project slug {slug!r}{made} is the name of a command, so a command given it "
        "could not tell the project from the command",
        "choose another name, or give the project another slug",
        context={"slug": slug},
    )


def _slug_taken(slug: str) -> Conflict:
    return Conflict(
        "project_exists",
        f"a project with the slug {slug!r} exists already",
        "choose another name, or give the project another slug",
        context={"slug": slug},
    )


# Every project by slug, and whether it has a connection (one at most: a unique project_id).
_LIST_PROJECTS = (
    "SELECT p.id, p.name, p.slug, p.created_at, c.id IS NOT NULL AS connected"
    " FROM projects p LEFT JOIN repository_connections c ON c.project_id = p.id"
    " ORDER BY p.slug"
)


def _info(row: Project, *, connected: bool) -> ProjectInfo:
    return ProjectInfo(row.id, row.name, row.slug, row.created_at, connected)
