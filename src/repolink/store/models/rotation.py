"""The table of deploy key rotations: ``key_rotations``.

One row per rotation of a connection's deploy key. ``state`` is ``pending`` from
``repolink keys rotate`` until ``--complete`` proves the new key with a fetch, then
``completed``, with ``old_key_id`` naming the key it retired. An aborted or replaced pending
rotation is deleted together with its key, so the rows are also the record of which project a
retired key served.

At most one rotation of a connection is pending: a unique index over ``connection_id`` limited
to pending rows (both SQLite and PostgreSQL have partial indexes), so two concurrent starts
cannot both succeed. Migration 0006 creates it on both; the model names only SQLite's
``where``: a ``postgresql_where`` here made every command import the PostgreSQL dialect
(asyncpg's module included) to validate the argument (issue 10 §2).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from repolink.store.base import Base
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import KEY_GENERATED, RepositoryConnection, new_id
from repolink.store.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)

ROTATION_PENDING = "pending"
ROTATION_COMPLETED = "completed"

_PENDING_ONLY = text("state = 'pending'")


class KeyRotation(Base):
    __tablename__ = "key_rotations"
    __table_args__ = (
        Index(
            "uq_key_rotations_pending",
            "connection_id",
            unique=True,
            sqlite_where=_PENDING_ONLY,
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(RepositoryConnection.id, ondelete="CASCADE")
    )
    new_key_id: Mapped[str] = mapped_column(String(32), ForeignKey(KeyRecord.id), unique=True)
    old_key_id: Mapped[str | None] = mapped_column(String(32), ForeignKey(KeyRecord.id))
    # KEY_GENERATED or KEY_IMPORTED: the connection's key_origin once the rotation completes.
    key_origin: Mapped[str] = mapped_column(
        String(16), default=KEY_GENERATED, server_default=KEY_GENERATED
    )
    state: Mapped[str] = mapped_column(String(16), default=ROTATION_PENDING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"KeyRotation(id={self.id!r}, state={self.state!r})"


def rotation_key_ids(session: Session, connection_id: str) -> list[str]:
    """Every key record a connection's rotations name (pending, current and retired keys):
    what removing the connection must delete besides its deploy key."""
    ids: set[str] = set()
    for new_key_id, old_key_id in session.execute(
        select(KeyRotation.new_key_id, KeyRotation.old_key_id).where(
            KeyRotation.connection_id == connection_id
        )
    ):
        ids.add(new_key_id)
        if old_key_id is not None:
            ids.add(old_key_id)
    return sorted(ids)


def connection_key_ids(session: Session, connection: RepositoryConnection) -> list[str]:
    """Every key record a connection owns: its deploy key and the keys of its rotations.
    Read them before deleting the connection: its rotations go with it, by cascade."""
    return sorted({connection.deploy_key_id, *rotation_key_ids(session, connection.id)})
