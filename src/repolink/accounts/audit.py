"""The audit log: who changed a key, a connection, a member, a token or a secret, and when.

Services of this package write their entries inside their own transaction
(:func:`write_entry`), so a change and its entry are committed together; other services call
:meth:`AuditService.record`. Details are short strings and never hold key material or a
secret: the caller passes names, ids and fingerprints only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from repolink.accounts.info import AuditPage, AuditRecord
from repolink.accounts.visibility import project_for
from repolink.auth.principal import Principal, Role
from repolink.errors import PermissionDenied, ValidationError
from repolink.store import Store
from repolink.store.ids import MAX_ROW_ID
from repolink.store.models.accounts import AuditEntry
from repolink.store.models.platform import Project
from repolink.store.types import Clock, utcnow

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_TARGET_LENGTH = 200
MAX_DETAIL_LENGTH = 500
MAX_SLUG_LENGTH = 62


def write_entry(
    session: Session,
    actor: Principal,
    action: str,
    *,
    now: datetime,
    project: Project | None = None,
    project_slug: str | None = None,
    target: str | None = None,
    details: Mapping[str, str] | None = None,
) -> None:
    """One entry, in the caller's transaction. ``project_slug`` alone: a project that is gone
    (recorded after its deletion)."""
    slug = project.slug if project is not None else project_slug
    session.add(
        AuditEntry(
            at=now,
            actor=actor.username,
            action=action,
            project_id=project.id if project is not None else None,
            project_slug=slug[:MAX_SLUG_LENGTH] if slug is not None else None,
            target=target[:MAX_TARGET_LENGTH] if target is not None else None,
            details={str(k): str(v)[:MAX_DETAIL_LENGTH] for k, v in (details or {}).items()}
            or None,
        )
    )


class AuditService:
    def __init__(self, store: Store, *, clock: Clock = utcnow) -> None:
        self._store = store
        self._clock = clock

    def record(
        self,
        actor: Principal,
        action: str,
        *,
        project: str | None = None,
        target: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Record that ``actor`` did ``action`` (``key.rotate``, ``connection.set`` …) on
        ``target`` in ``project`` (a slug; an unknown slug is recorded by slug alone)."""
        with self._store.session() as session:
            row = (
                session.scalar(select(Project).where(Project.slug == project))
                if project is not None
                else None
            )
            write_entry(
                session,
                actor,
                action,
                now=self._clock(),
                project=row,
                project_slug=project,
                target=target,
                details=details,
            )

    def entries(
        self,
        principal: Principal,
        *,
        project: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> AuditPage:
        """Entries newest first: all of them for a site admin; a project's for its admins
        (``project`` given). Anyone else: ``role_required`` (or ``project_not_found`` for a
        project they cannot see)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError(
                "limit_invalid", f"limit is 1 to {MAX_LIMIT}", f"ask for at most {MAX_LIMIT}"
            )
        before = _cursor(cursor)
        with self._store.session() as session:
            query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
            if project is not None:
                row = project_for(session, principal, project, Role.ADMIN)
                query = query.where(AuditEntry.project_id == row.id)
            elif not principal.site_admin:
                raise PermissionDenied(
                    "site_admin_required",
                    "only a site admin may read the whole audit log",
                    "read the audit log of a project you administer",
                )
            if before is not None:
                query = query.where(AuditEntry.id < before)
            rows = list(session.scalars(query))
            items = [_record(row) for row in rows[:limit]]
        next_cursor = str(items[-1].id) if len(rows) > limit else None
        return AuditPage(items, next_cursor)


def _cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 18 or int(cursor) > MAX_ROW_ID:
        raise ValidationError(
            "cursor_invalid",
            "the cursor is not one this list gave",
            "pass the next_cursor of the previous page, or none",
        )
    return int(cursor)


def _record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        project=row.project_slug,
        target=row.target,
        details=dict(row.details or {}),
    )
