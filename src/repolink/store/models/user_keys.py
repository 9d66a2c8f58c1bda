"""The table of user keys: ``user_keys`` (CircleCI's "user key", issue 11 §5).

A user key is a key pair a project holds on behalf of one of its users (a
:class:`~repolink.store.models.KeyRecord`, private half encrypted by the vault, never shown
again): on a real forge it is added to that user's account, so it reaches whatever the user
may read. One per user and project (``uq_user_keys_project_user``); ``fingerprint_sha256``
repeats the record's fingerprint so a key is found by it without a join. A user's keys go
when the user is deleted or leaves the project (:func:`delete_user_keys`, called by the
accounts services): the platform must not go on using the access of someone who left.

A project's *preferred* checkout key is its newest user key, else its deploy key: a user key is
preferred over the deploy key (CircleCI's rule), and every fetch uses the preferred key
(:func:`preferred_key_id`). Deleting the project removes its user keys (by cascade; the
project service deletes their key records).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from repolink.store.base import Base
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import Project, RepositoryConnection, new_id
from repolink.store.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)


class UserKey(Base):
    __tablename__ = "user_keys"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_user_keys_project_user"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(32), ForeignKey(Project.id, ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    key_record_id: Mapped[str] = mapped_column(String(32), ForeignKey(KeyRecord.id), unique=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"UserKey(id={self.id!r}, user_id={self.user_id!r}, "
            f"fingerprint_sha256={self.fingerprint_sha256!r})"
        )


def newest_user_key(session: Session, project_id: str) -> UserKey | None:
    """The project's preferred user key: the newest one."""
    return session.scalar(
        select(UserKey)
        .where(UserKey.project_id == project_id)
        .order_by(UserKey.created_at.desc(), UserKey.id.desc())
        .limit(1)
    )


def preferred_key_id(session: Session, connection: RepositoryConnection) -> str:
    """The key record a fetch of ``connection`` uses: the project's newest user key, else the
    connection's deploy key."""
    user_key = newest_user_key(session, connection.project_id)
    return user_key.key_record_id if user_key is not None else connection.deploy_key_id


def user_key_record_ids(session: Session, project_id: str) -> list[str]:
    """The key records of a project's user keys: what deleting the project must delete too."""
    return list(
        session.scalars(select(UserKey.key_record_id).where(UserKey.project_id == project_id))
    )


def delete_user_keys(session: Session, user_id: int, project_id: str | None = None) -> list[str]:
    """Delete the user keys of ``user_id`` (in ``project_id`` only, when given) and their key
    records, in the caller's transaction; answers their SHA256 fingerprints."""
    query = select(UserKey.key_record_id, UserKey.fingerprint_sha256).where(
        UserKey.user_id == user_id
    )
    if project_id is not None:
        query = query.where(UserKey.project_id == project_id)
    rows = session.execute(query).all()
    record_ids = [record_id for record_id, _ in rows]
    if record_ids:
        session.execute(delete(UserKey).where(UserKey.key_record_id.in_(record_ids)))
        session.execute(delete(KeyRecord).where(KeyRecord.id.in_(record_ids)))
        log.info("deleted %d user keys of user %s", len(record_ids), user_id)
    return [fingerprint for _, fingerprint in rows]
