"""The table of fetch runs: ``fetch_runs``, the history of every fetch and its job queue.

One row per fetch asked for (by the API, a webhook, a push to the built-in host, polling, a
connect …). The row is also the job of kind ``fetch_connection`` that carries the fetch out
(:mod:`repolink.platform.fetch_queue`): ``status`` is the run's public state — ``queued``
(waiting, perhaps for a retry after a transient failure), ``running`` (claimed by a worker
until ``claimed_until``, a lease its worker renews), ``done``, ``failed`` or ``cancelled``.

Two rules hold per connection. At most one run is waiting: a unique index over
``connection_id`` limited to queued rows (both SQLite and PostgreSQL have partial indexes),
so a request that arrives while one waits joins it, race-free across threads and processes.
At most one is running: the queue never claims a run of a connection whose other run holds
a live lease (and the mirror's lock stands behind that). As in
:mod:`repolink.store.models.rotation`, the model names only SQLite's ``where``; the migration
creates the index on both.

``first_seq``/``last_seq`` bound the index numbers (``commits.seq``) of the commits the run
added, so "the commits this fetch added" is one range query. ``progress`` is the latest
progress git reported to the running attempt (:mod:`repolink.platform.fetch_progress`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from repolink.store.base import Base
from repolink.store.models.platform import Project, RepositoryConnection
from repolink.store.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)

RUN_QUEUED = "queued"
RUN_RUNNING = "running"
RUN_DONE = "done"
RUN_FAILED = "failed"
RUN_CANCELLED = "cancelled"
RUN_STATES = (RUN_QUEUED, RUN_RUNNING, RUN_DONE, RUN_FAILED, RUN_CANCELLED)
FINISHED_STATES = (RUN_DONE, RUN_FAILED, RUN_CANCELLED)

WAITING_ONLY = "status = 'queued'"


class FetchRun(Base):
    __tablename__ = "fetch_runs"
    __table_args__ = (
        Index(
            "uq_fetch_runs_waiting", "connection_id", unique=True, sqlite_where=text(WAITING_ONLY)
        ),
        Index("ix_fetch_runs_connection", "connection_id", "id"),
        Index("ix_fetch_runs_due", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(RepositoryConnection.id, ondelete="CASCADE")
    )
    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(Project.id, ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=RUN_QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    new_commits: Mapped[int] = mapped_column(Integer, default=0)
    first_seq: Mapped[int | None] = mapped_column(Integer)
    last_seq: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The latest progress git reported to the running attempt (platform/fetch_progress.py).
    progress: Mapped[dict[str, object] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"FetchRun(id={self.id!r}, status={self.status!r}, trigger={self.trigger!r})"
