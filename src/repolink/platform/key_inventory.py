"""Every key the platform holds, with its project, age, last use and state.

The inventory is built around :class:`~repolink.store.models.KeyRecord`, so every stored key is
listed, whatever uses it. Which project a key serves, and as what, comes from the tables that
point at key records:

- ``repository_connections.deploy_key_id`` — a project's deploy key;
- ``key_rotations`` — a rotation's pending key, and the deploy keys rotations retired;
- any other table with a ``project_id`` column and a foreign key to ``key_records.id``
  (``additional_keys``, for one): such a table needs no change here beyond its models module
  being imported, its keys are listed with their project and the table's name, singular
  (``additional_keys`` → "additional key"), as use.

State: ``retired`` once ``retired_at`` is set, ``pending`` while a rotation waits to prove the
key, ``active`` otherwise. A key that is not retired and older than :data:`ROTATE_AFTER` is
flagged for rotation. Last use is the last successful fetch with the key.

:class:`KeyService` is what adapters call (``repolink keys list``, the API's project keys).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Table, select
from sqlalchemy.orm import Session

from repolink.errors import ValidationError
from repolink.platform.projects import get_project
from repolink.store import Store, utcnow
from repolink.store.base import Base
from repolink.store.key_records import list_key_records
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import Project, RepositoryConnection
from repolink.store.models.rotation import ROTATION_PENDING, KeyRotation
from repolink.store.types import Clock

log = logging.getLogger(__name__)

ROTATE_AFTER = timedelta(days=180)
ROTATE_FLAG = "rotate: older than 180 days"

STATE_ACTIVE = "active"
STATE_PENDING = "pending"
STATE_RETIRED = "retired"
KEY_STATES = (STATE_ACTIVE, STATE_PENDING, STATE_RETIRED)

USE_DEPLOY = "deploy key"

_OWN_TABLES = frozenset({RepositoryConnection.__tablename__, KeyRotation.__tablename__})


@dataclass(frozen=True)
class KeyStatus:
    """One key as ``repolink keys list`` shows it; never its private half."""

    id: str
    project: str | None
    use: str | None
    label: str
    key_type: str
    bits: int
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    created_at: datetime
    age_days: int
    last_used_at: datetime | None
    days_since_use: int | None
    retired_at: datetime | None
    state: str
    rotate_due: bool

    @property
    def flags(self) -> tuple[str, ...]:
        return (ROTATE_FLAG,) if self.rotate_due else ()

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "project": self.project,
            "use": self.use,
            "label": self.label,
            "key_type": self.key_type,
            "bits": self.bits,
            "public_key": self.public_key,
            "fingerprint_sha256": self.fingerprint_sha256,
            "fingerprint_md5": self.fingerprint_md5,
            "created_at": self.created_at.isoformat(),
            "age_days": self.age_days,
            "last_used_at": _iso(self.last_used_at),
            "days_since_use": self.days_since_use,
            "retired_at": _iso(self.retired_at),
            "state": self.state,
            "rotate_due": self.rotate_due,
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class _Owner:
    project: str
    use: str


class KeyService:
    """The inventory of every key the platform stores."""

    def __init__(self, store: Store, *, clock: Clock = utcnow) -> None:
        self._store = store
        self._clock = clock

    def list_keys(self, *, unused_days: int | None = None) -> list[KeyStatus]:
        """Every stored key, by project, then state, then age (oldest first).

        ``unused_days``: only keys without a successful use in that many days; a key never
        used counts from its creation, so a new key is not "unused" before it had its chance.
        """
        if unused_days is not None and unused_days < 0:
            raise ValidationError(
                "unused_days_invalid",
                f"the number of days a key was not used must be 0 or more (got {unused_days})",
                "for keys not used in three months: 90",
                context={"days": str(unused_days)},
            )
        moment = self._clock()
        with self._store.session() as session:
            owners = _owners(session)
            pending = _pending_key_ids(session)
            keys = [
                _status(record, owners.get(record.id), pending, moment)
                for record in list_key_records(session)
            ]
        if unused_days is not None:
            cutoff = moment - timedelta(days=unused_days)
            keys = [key for key in keys if (key.last_used_at or key.created_at) < cutoff]
        keys.sort(
            key=lambda key: (key.project is None, key.project or "", _rank(key), key.created_at)
        )
        return keys

    def project_keys(self, project: str) -> list[KeyStatus]:
        """The keys of one project (deploy key, pending and retired ones, additional keys), by
        state, then age; ``project_not_found`` for an unknown project."""
        moment = self._clock()
        with self._store.session() as session:
            slug = get_project(session, project).slug
            owners = _owners(session)
            pending = _pending_key_ids(session)
            ids = [key_id for key_id, owner in owners.items() if owner.project == slug]
            records = session.scalars(select(KeyRecord).where(KeyRecord.id.in_(ids)))
            keys = [_status(record, owners[record.id], pending, moment) for record in records]
        keys.sort(key=lambda key: (_rank(key), key.created_at, key.id))
        return keys


def _status(record: KeyRecord, owner: _Owner | None, pending: set[str], now: datetime) -> KeyStatus:
    if record.retired_at is not None:
        state = STATE_RETIRED
    elif record.id in pending:
        state = STATE_PENDING
    else:
        state = STATE_ACTIVE
    age = now - record.created_at
    return KeyStatus(
        id=record.id,
        project=owner.project if owner else None,
        use=owner.use if owner else None,
        label=record.label,
        key_type=record.key_type,
        bits=record.bits,
        public_key=record.public_key,
        fingerprint_sha256=record.fingerprint_sha256,
        fingerprint_md5=record.fingerprint_md5,
        created_at=record.created_at,
        age_days=max(age.days, 0),
        last_used_at=record.last_used_at,
        days_since_use=(
            max((now - record.last_used_at).days, 0) if record.last_used_at is not None else None
        ),
        retired_at=record.retired_at,
        state=state,
        rotate_due=state != STATE_RETIRED and age > ROTATE_AFTER,
    )


def _rank(key: KeyStatus) -> int:
    return KEY_STATES.index(key.state)


def _pending_key_ids(session: Session) -> set[str]:
    rows = session.scalars(
        select(KeyRotation.new_key_id).where(KeyRotation.state == ROTATION_PENDING)
    )
    return set(rows)


def _owners(session: Session) -> dict[str, _Owner]:
    owners: dict[str, _Owner] = {}
    deploy = select(RepositoryConnection.deploy_key_id, Project.slug).join(
        Project, Project.id == RepositoryConnection.project_id
    )
    for key_id, slug in session.execute(deploy):
        owners[key_id] = _Owner(slug, USE_DEPLOY)
    rotated = (
        select(KeyRotation.new_key_id, KeyRotation.old_key_id, Project.slug)
        .join(RepositoryConnection, RepositoryConnection.id == KeyRotation.connection_id)
        .join(Project, Project.id == RepositoryConnection.project_id)
    )
    for new_key_id, old_key_id, slug in session.execute(rotated):
        for rotated_id in (new_key_id, old_key_id):
            if rotated_id is not None:
                owners.setdefault(rotated_id, _Owner(slug, USE_DEPLOY))
    for table, column in _other_key_links():
        linked = select(column, Project.slug).join(Project, Project.id == table.c.project_id)
        for key_id, slug in session.execute(linked):
            if key_id is not None:
                owners.setdefault(key_id, _Owner(slug, _use_of(table)))
    return owners


def _other_key_links() -> list[tuple[Table, Column[str]]]:
    """(table, column) of every other mapped table that ties a key record to a project."""
    key_id = KeyRecord.__table__.c.id
    links: list[tuple[Table, Column[str]]] = []
    for table in Base.metadata.sorted_tables:
        if table.name in _OWN_TABLES or "project_id" not in table.c:
            continue
        for foreign_key in table.foreign_keys:
            if foreign_key.column is key_id:
                links.append((table, foreign_key.parent))
    return links


def _use_of(table: Table) -> str:
    return table.name.removesuffix("s").replace("_", " ")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
