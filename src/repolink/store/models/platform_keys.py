"""Tables of a project's extra keys: additional keys and key rules (architecture.md#words).

- ``additional_keys``: a key pair of the project (a
  :class:`~repolink.store.models.KeyRecord`, private half encrypted by the vault) for one host,
  or for any host when ``host`` is empty. ``port`` narrows it to one port of that host;
  ``None`` means every port. ``fingerprint_sha256`` repeats the record's fingerprint so that
  the database itself refuses the same key twice in one project.
- ``key_rules``: URL prefix → key. ``prefix`` is the canonical text of
  :class:`repolink.platform.key_rules.URLPrefix`; ``additional_key_id`` names the key, and
  ``None`` means the project's deploy key — whichever key that is at the time of use, so a
  rotated deploy key keeps its rules.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from repolink.store.base import Base
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import Project, new_id
from repolink.store.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)

MAX_PREFIX_LENGTH = 2048


class AdditionalKey(Base):
    __tablename__ = "additional_keys"
    __table_args__ = (UniqueConstraint("project_id", "fingerprint_sha256"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(32), ForeignKey(Project.id, ondelete="CASCADE"))
    key_record_id: Mapped[str] = mapped_column(String(32), ForeignKey(KeyRecord.id), unique=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int | None] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"AdditionalKey(id={self.id!r}, fingerprint_sha256={self.fingerprint_sha256!r}, "
            f"host={self.host!r}, port={self.port!r})"
        )


class KeyRule(Base):
    __tablename__ = "key_rules"
    __table_args__ = (UniqueConstraint("project_id", "prefix"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(32), ForeignKey(Project.id, ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(MAX_PREFIX_LENGTH))
    # Removing a key that rules point at is refused by the service; the cascade only matters
    # when the whole project goes, whatever order the database deletes its rows in.
    additional_key_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("additional_keys.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"KeyRule(prefix={self.prefix!r}, additional_key_id={self.additional_key_id!r})"
