"""Tables of the host's HTTP side: webhooks and their deliveries (its admin tokens are API
tokens, in :mod:`repolink.store.models.accounts`).

A webhook's secret is a credential:
it is stored encrypted by the vault, bound to the hook's uuid, never in clear. A delivery keeps
the exact body it sends, so every retry sends (and signs) the same bytes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

# Imported for its tables: host_hooks refers to host_repositories, which must be known to the
# same metadata before the first flush.
import repolink.store.models.host  # noqa: F401
from repolink.store.base import Base
from repolink.store.types import UTCDateTime, utcnow

DELIVERY_PENDING = "pending"
DELIVERY_DELIVERED = "delivered"
DELIVERY_FAILED = "failed"


def new_hook_uuid() -> str:
    return str(uuid.uuid4())


class HostHook(Base):
    """A URL the host POSTs to when a repository is pushed to."""

    __tablename__ = "host_hooks"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_hook_uuid)
    repository_id: Mapped[str] = mapped_column(
        ForeignKey("host_repositories.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def has_secret(self) -> bool:
        return self.secret_encrypted is not None

    def __repr__(self) -> str:
        # Not the URL (it may carry credentials) and never the secret.
        return f"HostHook(uuid={self.uuid!r}, repository_id={self.repository_id!r})"


class HostHookDelivery(Base):
    """One event to send to one hook, with the outcome of its latest attempt."""

    __tablename__ = "host_hook_deliveries"
    __table_args__ = (
        Index("ix_host_hook_deliveries_due", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hook_id: Mapped[int] = mapped_column(
        ForeignKey("host_hooks.id", ondelete="CASCADE"), index=True
    )
    request_uuid: Mapped[str] = mapped_column(String(36), default=new_hook_uuid)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    """The exact JSON body sent, as text: retries must send (and sign) the same bytes."""
    status: Mapped[str] = mapped_column(String(16), default=DELIVERY_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set while one process sends an attempt; others leave the delivery alone until then."""
    last_response_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return (
            f"HostHookDelivery(id={self.id!r}, hook_id={self.hook_id!r}, "
            f"status={self.status!r}, attempts={self.attempts!r})"
        )
