"""Table ``known_hosts``: host keys trusted explicitly, beyond the shipped pins."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from repolink.store.base import Base
from repolink.store.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)


class KnownHost(Base):
    """One trusted host key of ``host:port``.

    ``host`` is normalised (lower-case name, or compressed IPv6 without brackets) and
    ``port`` always explicit. ``public_key`` is ``type base64``. ``overrides_pin`` marks a key
    trusted with ``force`` for a host that has shipped pins: while such a row exists, the
    pins of that host are not trusted.
    """

    __tablename__ = "known_hosts"
    __table_args__ = (
        UniqueConstraint(
            "host", "port", "fingerprint_sha256", name="uq_known_hosts_host_port_fingerprint"
        ),
        Index("ix_known_hosts_host_port", "host", "port"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    key_type: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))
    overrides_pin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"KnownHost(host={self.host!r}, port={self.port}, key_type={self.key_type!r}, "
            f"fingerprint_sha256={self.fingerprint_sha256!r})"
        )
