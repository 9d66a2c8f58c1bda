"""Fetches asked for: queued as jobs, joined while one waits, remembered as fetch history.

:class:`FetchRequestService` is ``app.fetch_requests``, what adapters call when a fetch is
wanted without waiting for it — the API's "Fetch repository", a webhook, a push to the
built-in host, polling, a new connection. A request queues a run of the project's connection
(:class:`~repolink.platform.fetch_queue.FetchQueue`), or joins the run that waits already and
gets that one back: at most one fetch runs and one waits per connection, however many
requests arrive (100 webhooks in one second make at most two fetches). A worker
(:class:`repolink.platform.fetch_worker.FetchWorker`, in a server) carries the runs out;
:meth:`FetchRequestService.wait` also carries one out itself when no worker has taken it yet, so
waiting works in any process.

A run's record (:class:`FetchRunInfo`) is the fetch history: trigger, actor, state, timings,
the error code of a failure, the number of new commits and the index ``seq`` range they got.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Row, Select, bindparam, select

from repolink.errors import NotFound, ValidationError
from repolink.jobs import Job, RetryPolicy
from repolink.jobs.retry import settle
from repolink.platform import polling
from repolink.platform.connections import get_connection
from repolink.platform.fetch import FetchService
from repolink.platform.fetch_jobs import (
    FETCH_RETRY_POLICY,
    PUSH_TRIGGER,
    execute_run,
    lease_kept,
)
from repolink.platform.fetch_queue import FetchQueue, QueuedRun
from repolink.platform.hosted_pushes import ServerAddress, connections_of_hosted
from repolink.platform.projects import get_project
from repolink.store import Store
from repolink.store.models.fetch_runs import FINISHED_STATES, RUN_QUEUED, FetchRun
from repolink.store.models.platform import Project, RepositoryConnection
from repolink.store.types import Clock, utcnow

log = logging.getLogger(__name__)

TRIGGERS = ("api", "web", "webhook", PUSH_TRIGGER, "poll", "connect", "cli", "rotation")
DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 500
# A waiter looks at the run this often when no change in this process tells it sooner.
_WAIT_POLL = 0.25


class HasUsername(Protocol):
    """Who asked: a :class:`repolink.auth.principal.Principal`, or anything with a username."""

    @property
    def username(self) -> str: ...


@dataclass(frozen=True)
class FetchRunInfo:
    """One fetch run as adapters show it. ``first_seq``..``last_seq`` (inclusive) are the index
    numbers of the commits it added (both ``None`` when it added none)."""

    id: int
    project: str
    trigger: str
    actor: str | None
    state: str
    attempts: int
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error_code: str | None
    error_message: str | None
    new_commits: int
    first_seq: int | None
    last_seq: int | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def duration(self) -> float | None:
        """Seconds from the start of its last attempt to its end, once finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "project": self.project,
            "trigger": self.trigger,
            "actor": self.actor,
            "state": self.state,
            "attempts": self.attempts,
            "requested_at": self.requested_at.isoformat(),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": (
                {"code": self.error_code, "message": self.error_message}
                if self.error_code
                else None
            ),
            "new_commits": self.new_commits,
            "seq_range": ([self.first_seq, self.last_seq] if self.first_seq is not None else None),
        }


class FetchRequestService:
    """Queue fetches, join waiting ones, read the fetch history, wait for a run."""

    def __init__(
        self,
        store: Store,
        fetches: FetchService,
        *,
        clock: Clock = utcnow,
        policy: RetryPolicy = FETCH_RETRY_POLICY,
        queue: FetchQueue | None = None,
        rng: random.Random | None = None,
        gather: Mapping[str, timedelta] | None = None,
    ) -> None:
        """``gather``: per trigger, how long a run it queues waits before it is due, so that
        the requests of a burst join it (a webhook's); other triggers' runs are due at once."""
        self.store = store
        self._gather = dict(gather or {})
        self.fetches = fetches
        self.policy = policy
        self.queue = queue or FetchQueue(store, clock=clock)
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter of poll times, no secret

    @property
    def workers_elsewhere(self) -> bool:
        """Whether queueing a run wakes workers of other processes (procrastinate's, on
        PostgreSQL), so a caller that runs no worker need not start one."""
        return self.queue.waker is not None

    # -- requests -------------------------------------------------------------------------

    def request(
        self, project_slug: str, *, trigger: str, actor: str | HasUsername | None = None
    ) -> FetchRunInfo:
        """Queue a fetch of ``project_slug``'s connection, or join the one that waits; the run.

        ``connection_not_found`` when the project has no connection.
        """
        trigger = _checked_trigger(trigger)
        with self.store.session() as session:
            connection = get_connection(session, project_slug)
            connection_id, project_id = connection.id, connection.project_id
        return self._request(connection_id, project_id, trigger, actor)

    def request_for_connection(
        self, connection_id: str, *, trigger: str, actor: str | HasUsername | None = None
    ) -> FetchRunInfo:
        """:meth:`request` for a connection id (a push to the built-in host, polling)."""
        trigger = _checked_trigger(trigger)
        with self.store.session() as session:
            connection = session.get(RepositoryConnection, connection_id)
            if connection is None:
                raise NotFound(
                    "connection_not_found",
                    f"there is no repository connection {connection_id}",
                    "it was removed; connect the project again",
                )
            project_id = connection.project_id
        return self._request(connection_id, project_id, trigger, actor)

    def request_within(
        self, db: Connection, connection_id: str, project_id: str, *, trigger: str
    ) -> QueuedRun | None:
        """:meth:`request` as the first write of the caller's transaction
        (:meth:`~repolink.store.Store.writing`), for a caller that records in that same
        transaction why it asked (a webhook delivery and its run). ``None``: no waiting run
        could be had in it; the caller uses :meth:`request` instead. Once the transaction
        committed, the caller passes the run to :meth:`announce`."""
        return self.queue.request_on(
            db,
            connection_id=connection_id,
            project_id=project_id,
            trigger=_checked_trigger(trigger),
            actor=None,
            due_in=self._gather.get(trigger, timedelta(0)),
        )

    def announce(self, queued: QueuedRun) -> None:
        """Wake this process's workers for a run :meth:`request_within` created."""
        self.queue.announce(queued)

    def _request(
        self,
        connection_id: str,
        project_id: str,
        trigger: str,
        actor: str | HasUsername | None,
    ) -> FetchRunInfo:
        run_id, created = self.queue.request(
            connection_id=connection_id,
            project_id=project_id,
            trigger=trigger,
            actor=_actor_name(actor),
            due_in=self._gather.get(trigger, timedelta(0)),
        )
        info = self._info(run_id)
        log.info(
            "fetch of project %s requested (%s): %s run %d",
            info.project,
            trigger,
            "queued" if created else "joined waiting",
            run_id,
        )
        return info

    def request_and_wait(
        self,
        project_slug: str,
        *,
        trigger: str,
        actor: str | HasUsername | None = None,
        timeout: float,
    ) -> FetchRunInfo:
        """:meth:`request` then :meth:`wait` (the API's "Fetch repository" that answers when
        done). A run that is free at once is claimed in the transaction that queues it and
        carried out in this thread: no worker is woken to race this thread for it, and the
        answer waits for no hand-over between threads."""
        trigger = _checked_trigger(trigger)
        with self.store.session() as session:
            connection = get_connection(session, project_slug)
            connection_id, project_id = connection.id, connection.project_id
        run_id, created, job = self.queue.request_claimed(
            connection_id=connection_id,
            project_id=project_id,
            trigger=trigger,
            actor=_actor_name(actor),
        )
        log.info(
            "fetch of project %s requested (%s): %s run %d",
            project_slug,
            trigger,
            "queued" if created else "joined waiting",
            run_id,
        )
        if job is None:  # its connection runs another fetch: wait for it, then this one
            return self.wait(run_id, timeout)
        self._carry_out(job)
        # The attempt's outcome is the answer, a failure waiting for its retry too.
        return self._info(run_id)

    # -- history --------------------------------------------------------------------------

    def history(
        self, project_slug: str, *, limit: int = DEFAULT_HISTORY_LIMIT
    ) -> list[FetchRunInfo]:
        """The project's fetch runs, newest first, at most ``limit``."""
        if not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise ValidationError(
                "limit_invalid",
                f"limit must be between 1 and {MAX_HISTORY_LIMIT}",
                "ask for fewer fetch runs",
                context={"field": "limit"},
            )
        with self.store.session() as session:
            project = get_project(session, project_slug)
            rows = session.scalars(
                select(FetchRun)
                .where(FetchRun.project_id == project.id)
                .order_by(FetchRun.id.desc())
                .limit(limit)
            )
            return [_info(row, project.slug) for row in rows]

    def get(self, project_slug: str, run_id: int) -> FetchRunInfo:
        """One run of the project; ``fetch_not_found`` when it has no such run."""
        with self.store.session() as session:
            project = get_project(session, project_slug)
            row = session.get(FetchRun, run_id)
            if row is None or row.project_id != project.id:
                raise _run_not_found(run_id, project.slug)
            return _info(row, project.slug)

    def get_run(self, run_id: int) -> FetchRunInfo:
        """A run by id alone (a caller that holds the id it was given)."""
        return self._info(run_id)

    # -- waiting --------------------------------------------------------------------------

    def wait(self, run_id: int, timeout: float) -> FetchRunInfo:
        """Block until run ``run_id`` has finished; the run as it then is.

        Also returns when an attempt made while waiting failed and the run waits for its retry
        (``state`` ``queued`` with an ``error_code``: the caller has its answer; a worker
        retries later),
        and after ``timeout`` seconds whatever its state. A run no worker has taken yet is
        carried out here, in this thread, so waiting works in any process.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        attempts_before: int | None = None
        while True:
            generation = self.queue.generation
            info = self._info(run_id)
            if attempts_before is None:
                attempts_before = info.attempts
            retrying = info.state == RUN_QUEUED and info.error_code is not None
            if info.finished or (retrying and info.attempts > attempts_before):
                return info
            if info.state == RUN_QUEUED and self._run_here(run_id):
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return info
            self.queue.wait_for_change(generation, min(remaining, _WAIT_POLL))

    def carry_out(self, run_ids: Sequence[int], *, timeout: float) -> list[FetchRunInfo]:
        """See these runs finished, retries included: each is carried out in this thread as
        soon as it is due and its connection runs no other fetch, unless a worker elsewhere
        (a server's) takes it first. Gives up waiting after ``timeout`` seconds in all (a run
        being carried out here is finished first). The runs as they then are; a run removed
        meanwhile (its connection was) is left out.

        What the detached process started after an OpenSSH-mode push runs: the queue's claim
        keeps it and any server from fetching one connection twice at once.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        runs = []
        for run_id in run_ids:
            try:
                info = self.wait(run_id, deadline - time.monotonic())
                while not info.finished and time.monotonic() < deadline:
                    info = self.wait(run_id, deadline - time.monotonic())
            except NotFound:
                continue
            runs.append(info)
        return runs

    def _run_here(self, run_id: int) -> bool:
        """Claim and carry out the run in this thread, if it is due and free; whether it ran."""
        job = self.queue.claim_run(run_id)
        if job is None:
            return False
        self._carry_out(job)
        return True

    def _carry_out(self, job: Job) -> None:
        """One attempt at a run claimed for this thread, settled."""
        with lease_kept(self.queue, job.id):
            outcome = execute_run(self.store, self.fetches, job)
        self.queue.finish([settle(job, outcome, self.policy, utcnow())])

    # -- polling --------------------------------------------------------------------------

    def set_polling(self, project_slug: str, interval: int | None) -> int | None:
        """Fetch ``project_slug``'s connection every ``interval`` minutes (``None`` or 0: no
        polling, the default), for hosts that cannot send webhooks; the interval now set."""
        with self.store.session() as session:
            return polling.set_polling(session, project_slug, interval, self._clock(), self._rng)

    def poll_due(self) -> list[FetchRunInfo]:
        """Request (trigger ``poll``) the fetch of every connection whose poll is due, and set
        each one's next poll; the runs. What a worker's periodic pass calls."""
        now = self._clock()
        with self.store.session() as session:
            due = polling.due_polls(session, now)
        runs = []
        for connection_id, minutes, due_at in due:
            with self.store.session() as session:
                taken = polling.take_poll(
                    session, connection_id, due_at, polling.next_poll(now, minutes, self._rng)
                )
            if not taken:  # another process polls it
                continue
            try:
                runs.append(self.request_for_connection(connection_id, trigger="poll"))
            except NotFound:  # disconnected meanwhile
                continue
        return runs

    # -- pushes to this server's built-in host ------------------------------------------

    def request_for_hosted_push(
        self, full_name: str, server: ServerAddress, *, actor: str | HasUsername | None = None
    ) -> list[FetchRunInfo]:
        """Queue (or join) a fetch, trigger ``push``, of every connection whose URL names the
        hosted repository ``full_name`` (``workspace/slug``) on ``server``."""
        with self.store.session() as session:
            connection_ids = connections_of_hosted(session, full_name, server)
        runs = []
        for connection_id in connection_ids:
            try:
                runs.append(
                    self.request_for_connection(connection_id, trigger=PUSH_TRIGGER, actor=actor)
                )
            except NotFound:  # disconnected meanwhile
                continue
        return runs

    # -- internals ------------------------------------------------------------------------

    def _info(self, run_id: int) -> FetchRunInfo:
        # A waiter reads this after every change it hears of: one plain read.
        with self.store.reading() as db:
            row = db.execute(_run_statement(), {"run_id": run_id}).first()
        if row is None:
            raise _run_not_found(run_id, None)
        return _info(row, row.slug if row.slug is not None else row.project_id)


@functools.cache
def _run_statement() -> Select[Any]:
    return (
        select(FetchRun.__table__, Project.slug)
        .outerjoin(Project, Project.id == FetchRun.project_id)
        .where(FetchRun.id == bindparam("run_id"))
    )


def _info(row: FetchRun | Row[Any], project: str) -> FetchRunInfo:
    return FetchRunInfo(
        id=row.id,
        project=project,
        trigger=row.trigger,
        actor=row.actor,
        state=row.status,
        attempts=row.attempts,
        requested_at=row.requested_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error_code=row.error_code,
        error_message=row.error_message,
        new_commits=row.new_commits,
        first_seq=row.first_seq,
        last_seq=row.last_seq,
    )


def _checked_trigger(trigger: str) -> str:
    if trigger not in TRIGGERS:
        raise ValidationError(
            "fetch_trigger_invalid",
            "unknown fetch trigger",
            f"use one of {', '.join(TRIGGERS)}",
            context={"field": "trigger"},
        )
    return trigger


def _actor_name(actor: str | HasUsername | None) -> str | None:
    if actor is None:
        return None
    name = actor if isinstance(actor, str) else actor.username
    return name[:200]


def _run_not_found(run_id: int, project: str | None) -> NotFound:
    where = f" of project {project!r}" if project is not None else ""
    return NotFound(
        "fetch_not_found",
        f"there is no fetch run {run_id}{where}",
        "list the project's fetches to see their ids",
        context={"project": project} if project is not None else None,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
