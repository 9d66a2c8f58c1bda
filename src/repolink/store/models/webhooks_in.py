"""Tables of the webhooks a project receives: its secret, and what became of each delivery.

- ``project_webhook_secrets``: one per project, made on first use. The secret is a credential:
  stored encrypted by the vault, bound to the row's id, never in clear.
- ``webhook_deliveries_in``: one row per request that passed the signature check (and one per
  request refused because the project has no secret yet). ``dedup_key`` is the sender's
  delivery id on the first row that carried it and ``NULL`` on every other row, so the unique
  constraint on ``(project_id, provider, dedup_key)`` decides "seen before" race-free, in the
  database, across processes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

# Imported for its tables: both refer to projects, which must be in the same metadata.
import repolink.store.models.platform  # noqa: F401
from repolink.store.base import Base
from repolink.store.models.platform import new_id
from repolink.store.types import UTCDateTime, utcnow

OUTCOME_QUEUED = "queued"
OUTCOME_PING = "ping"
OUTCOME_IGNORED_EVENT = "ignored_event"
OUTCOME_REPLAYED = "replayed"
OUTCOME_OTHER_REPOSITORY = "other_repository"
OUTCOME_NOT_CONNECTED = "not_connected"
OUTCOME_INVALID_PAYLOAD = "invalid_payload"
OUTCOME_REFUSED = "refused"
OUTCOME_FAILED = "failed"
OUTCOMES = (
    OUTCOME_QUEUED,
    OUTCOME_PING,
    OUTCOME_IGNORED_EVENT,
    OUTCOME_REPLAYED,
    OUTCOME_OTHER_REPOSITORY,
    OUTCOME_NOT_CONNECTED,
    OUTCOME_INVALID_PAYLOAD,
    OUTCOME_REFUSED,
    OUTCOME_FAILED,
)


class ProjectWebhookSecret(Base):
    """The secret a project's incoming webhooks are signed with."""

    __tablename__ = "project_webhook_secrets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), unique=True
    )
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"ProjectWebhookSecret(project_id={self.project_id!r})"


class WebhookDeliveryIn(Base):
    """One webhook request a project received, and its outcome."""

    __tablename__ = "webhook_deliveries_in"
    __table_args__ = (
        UniqueConstraint("project_id", "provider", "dedup_key"),
        Index("ix_webhook_deliveries_in_project", "project_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE")
    )
    provider: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str | None] = mapped_column(String(128))
    dedup_key: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    fetch_run_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"WebhookDeliveryIn(id={self.id!r}, provider={self.provider!r}, "
            f"outcome={self.outcome!r})"
        )
