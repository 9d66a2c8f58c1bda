"""The job queue's interface: what a worker needs from wherever the jobs are kept.

A job is one piece of work of one *kind* (``deliver_webhook``…), tried until it is done or
given up on. Its life: **enqueued** (pending, due now) → **claimed** by one worker for a lease
(its attempt number counted up) → **finished**: done, failed for good, or due again later. A
claimer that dies holds its job only until the lease ends; then another worker takes it.

The embedded implementation keeps jobs in the application's own tables
(:mod:`repolink.jobs.table`). The interface is small on purpose: a PostgreSQL-backed
distributed queue such as procrastinate offers the same verbs (defer, fetch a due job, finish
it, retry later), so it can stand behind the same workers later (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol


@dataclass(frozen=True)
class Job:
    """One claimed attempt at a job. A handler loads what it needs by ``id``."""

    id: int
    kind: str
    attempt: int
    """This attempt's number: 1 for the first."""


@dataclass(frozen=True)
class Outcome:
    """What a handler reports of its attempt.

    ``details`` are kind-specific facts the queue keeps with the job (a webhook's HTTP status),
    recorded whatever became of the attempt. ``subject`` names what the job was about in log
    lines (``webhook <uuid>``); it never holds a secret.
    """

    ok: bool
    error: str | None = None
    transient: bool = True
    details: Mapping[str, Any] = field(default_factory=dict)
    subject: str = ""

    @classmethod
    def done(cls, *, details: Mapping[str, Any] | None = None, subject: str = "") -> Outcome:
        return cls(ok=True, details=details or {}, subject=subject)

    @classmethod
    def failed(
        cls,
        error: str,
        *,
        transient: bool = True,
        details: Mapping[str, Any] | None = None,
        subject: str = "",
    ) -> Outcome:
        """A failed attempt; a transient one is tried again while the retry policy allows."""
        return cls(
            ok=False, error=error, transient=transient, details=details or {}, subject=subject
        )


class State(Enum):
    """Where a finished attempt leaves its job."""

    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Settled:
    """A finished attempt, as the queue records it."""

    job: Job
    state: State
    error: str | None = None
    retry_at: datetime | None = None
    """When the job is due again; only for :attr:`State.RETRY`."""
    details: Mapping[str, Any] = field(default_factory=dict)


class JobQueue(Protocol):
    """Where jobs wait. Methods block (database work): async callers run them in a thread."""

    def enqueue(self, kind: str, args: Mapping[str, Any]) -> int:
        """A new pending job of ``kind``, due now; its id."""
        ...

    def claim(self, kinds: Collection[str], limit: int) -> list[Job]:
        """Up to ``limit`` due jobs of ``kinds``, each leased to this caller alone."""
        ...

    def finish(self, settled: Sequence[Settled]) -> None:
        """Record finished attempts: done, failed for good, or due again at ``retry_at``."""
        ...

    def next_due(self, kinds: Collection[str]) -> datetime | None:
        """When the next pending job of ``kinds`` that no one holds is due, if any."""
        ...

    def release(self, jobs: Sequence[Job]) -> None:
        """Give back jobs whose attempts were cancelled (the worker stopped): due again now,
        held by no one, the cancelled attempt not counted."""
        ...
