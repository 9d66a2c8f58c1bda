"""Key records: one SSH key pair (or public key alone) held by repolink."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from repolink.store.base import Base
from repolink.store.types import UTCDateTime, utcnow


def new_record_id() -> str:
    return uuid.uuid4().hex


class KeyRecord(Base):
    """A key pair's public facts in clear, its private half encrypted by the vault.

    ``private_key_encrypted`` is a vault token bound to ``id``; it is ``None`` for records
    that only hold a public key. ``vault_key_version`` repeats the token's master key
    version so stale rows can be found without reading every token.
    """

    __tablename__ = "key_records"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_record_id)
    label: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    key_type: Mapped[str] = mapped_column(String(64))
    bits: Mapped[int] = mapped_column(Integer)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint_md5: Mapped[str] = mapped_column(String(64))
    private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    vault_key_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def has_private_key(self) -> bool:
        return self.private_key_encrypted is not None

    def __repr__(self) -> str:
        # Never the ciphertext: it is nobody's business in a log line.
        return (
            f"KeyRecord(id={self.id!r}, key_type={self.key_type!r}, "
            f"fingerprint_sha256={self.fingerprint_sha256!r}, private={self.has_private_key})"
        )
