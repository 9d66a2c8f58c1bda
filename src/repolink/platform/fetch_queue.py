"""The queue of fetch jobs: ``fetch_runs`` rows, claimed by lease, at most one running and one
waiting per connection.

It implements :class:`repolink.jobs.queue.JobQueue` for the one kind ``fetch_connection``,
the way :class:`repolink.jobs.table.TableQueue` does for tables of other kinds, with the two
rules of the fetch jobs (DESIGN.md §3 "jobs") — procrastinate's ``queueing_lock`` and
``lock``, which is what can replace this queue on PostgreSQL:

- **one waiting** (:meth:`FetchQueue.enqueue`): an ``INSERT … ON CONFLICT DO NOTHING`` on the
  partial unique index over queued runs, then the queued run read back, both in one write
  transaction: a request that arrives while a run waits joins it and gets its id back;
- **one running** (:meth:`FetchQueue.claim`): one conditional UPDATE per claim, which also
  requires that no other run of the connection holds a live lease.

A run whose attempt failed transiently, or that was cancelled, goes back to waiting — unless
another run of its connection waits already: that one will fetch anyway, so this one ends
(``failed`` with its error, or ``cancelled``).

A worker renews the lease of a running fetch (:meth:`FetchQueue.renew`) while it runs; a
worker that dies leaves its run to be claimed again once the lease has run out.

On PostgreSQL the runs are carried out by procrastinate's workers: the queue is given a
:class:`Waker` (:class:`repolink.platform.fetch_dispatch.FetchDispatch`), told of every run
queued and of every connection whose run ended or went back to waiting.

Every transaction here begins with its write, so two SQLite connections never both hold a
read snapshot they then try to write from.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Executable,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from repolink.jobs.queue import Job, Settled, State
from repolink.platform.fetch_leases import LeaseKeeper
from repolink.store import Store, utcnow
from repolink.store.models.fetch_runs import (
    RUN_CANCELLED,
    RUN_DONE,
    RUN_FAILED,
    RUN_QUEUED,
    RUN_RUNNING,
    WAITING_ONLY,
    FetchRun,
)
from repolink.store.types import Clock

log = logging.getLogger(__name__)

FETCH_CONNECTION = "fetch_connection"
# How long a claimed fetch is reserved for its worker without news; the worker renews it
# every third of that while git runs, so only a dead worker's run outlives it.
FETCH_LEASE = timedelta(seconds=60)
MAX_ERROR_LENGTH = 1000


class Waker(Protocol):
    """Who else hears of waiting runs: the workers of other processes (procrastinate)."""

    def waiting(self, connection_id: str, due: datetime) -> None:
        """A run of ``connection_id`` was queued, due at ``due``."""
        ...

    def settled(self, connection_ids: Collection[str]) -> None:
        """Runs of these connections ended or went back to waiting: what waits behind them
        (or the retry) needs a worker."""
        ...


class FetchQueue:
    """A :class:`~repolink.jobs.queue.JobQueue` of ``fetch_connection`` jobs on ``fetch_runs``.

    Listeners (:meth:`add_listener`: a worker's wake) and waiters (:meth:`wait_for_change`)
    hear at once when this process enqueued or settled a run; other processes' changes are
    found by polling.
    """

    def __init__(
        self,
        store: Store,
        *,
        lease: timedelta = FETCH_LEASE,
        clock: Clock = utcnow,
        waker: Waker | None = None,
    ):
        self._store = store
        self.waker = waker
        self._lease = lease
        self._clock = clock
        self._changed = threading.Condition()
        self._generation = 0
        self._listeners: list[Callable[[], None]] = []
        self._leases = LeaseKeeper(self.renew, interval=max(lease.total_seconds() / 3, 0.05))

    @property
    def lease(self) -> timedelta:
        return self._lease

    def keep_lease(self, run_id: int) -> contextlib.AbstractContextManager[None]:
        """Renew the lease of a run this process carries out, every third of it, while the
        block runs (one thread renews them all: :class:`LeaseKeeper`)."""
        return self._leases.kept(run_id)

    # -- the queueing lock ----------------------------------------------------------------

    def enqueue(self, kind: str, args: Mapping[str, Any]) -> int:
        """The waiting run of ``args["connection_id"]``: a new one, or the one that waits."""
        run_id, _created = self.request(
            connection_id=args["connection_id"],
            project_id=args["project_id"],
            trigger=args.get("trigger", "api"),
            actor=args.get("actor"),
        )
        return run_id

    def request(
        self,
        *,
        connection_id: str,
        project_id: str,
        trigger: str,
        actor: str | None,
        due_in: timedelta = timedelta(0),
    ) -> tuple[int, bool]:
        """Insert-or-get the waiting run of a connection; its id, and whether it is new.

        A new run is due ``due_in`` from now. A request joining a run that waits longer than
        it would brings that run's due time forward: nobody waits for a gathering window they
        did not ask for (an API request joining a webhook's run).
        """
        for _ in range(3):
            try:
                with self._store.session() as session:
                    queued = self.request_on(
                        session.connection(),
                        connection_id=connection_id,
                        project_id=project_id,
                        trigger=trigger,
                        actor=actor,
                        due_in=due_in,
                    )
            except IntegrityError:
                continue  # PostgreSQL: the waiting run was taken meanwhile; look again
            if queued is not None:
                self.announce(queued)
                return queued.id, queued.created
        raise RuntimeError("no waiting fetch run could be inserted or found")

    def request_on(
        self,
        db: Connection,
        *,
        connection_id: str,
        project_id: str,
        trigger: str,
        actor: str | None,
        due_in: timedelta = timedelta(0),
    ) -> QueuedRun | None:
        """:meth:`request` as part of the caller's write transaction, which it should begin
        (see the module's docstring); ``None`` when the waiting run was taken meanwhile
        (PostgreSQL) — try again in a new transaction. Once the transaction committed, pass
        the run to :meth:`announce`."""
        now = self._clock()
        due = now + due_in
        values = {
            "connection_id": connection_id,
            "project_id": project_id,
            "trigger": trigger,
            "actor": actor,
            "status": RUN_QUEUED,
            "attempts": 0,
            "requested_at": now,
            "next_attempt_at": due,
            "new_commits": 0,
            "updated_at": now,
        }
        statements = _statements(db.dialect.name)
        created = db.execute(statements.insert_waiting, values).first() is not None
        run_id = db.execute(statements.waiting_run, {"connection_id": connection_id}).scalar()
        if run_id is None:
            return None
        if not created:
            db.execute(statements.bring_forward, {"run_id": run_id, "due": due})
        return QueuedRun(run_id, created, connection_id, due)

    def request_claimed(
        self, *, connection_id: str, project_id: str, trigger: str, actor: str | None
    ) -> tuple[int, bool, Job | None]:
        """:meth:`request` for a caller that carries the run out itself: in the same
        transaction the waiting run is claimed for it when it is free (no other run of the
        connection running); that job, or ``None``. A run claimed here wakes no worker — it
        would only race the caller for it; one left waiting does, as :meth:`request`."""
        for _ in range(3):
            job: Job | None = None
            try:
                with self._store.writing() as db:
                    queued = self.request_on(
                        db,
                        connection_id=connection_id,
                        project_id=project_id,
                        trigger=trigger,
                        actor=actor,
                    )
                    if queued is not None:
                        job = self._claim_on(db, queued.id, self._clock())
            except IntegrityError:
                continue  # PostgreSQL: the waiting run was taken meanwhile; look again
            if queued is not None:
                if job is None:
                    self.announce(queued)
                return queued.id, queued.created, job
        raise RuntimeError("no waiting fetch run could be inserted or found")

    def announce(self, queued: QueuedRun) -> None:
        """Wake this process's workers and waiters for a run that :meth:`request_on` created
        (a joined run was announced when it was created)."""
        if queued.created:
            self._notify()
            if self.waker is not None and queued.due is not None:
                self.waker.waiting(queued.connection_id, queued.due)

    # -- the lock -------------------------------------------------------------------------

    def claim(self, kinds: Collection[str], limit: int) -> list[Job]:
        if FETCH_CONNECTION not in kinds or limit <= 0:
            return []
        now = self._clock()
        with self._store.session() as session:
            candidates = list(
                session.scalars(
                    select(FetchRun.id)
                    .where(_due(now))
                    .order_by(FetchRun.next_attempt_at, FetchRun.id)
                    .limit(limit * 4)
                )
            )
        claimed: list[Job] = []
        for run_id in candidates:
            job = self.claim_run(run_id, now=now)
            if job is not None:
                claimed.append(job)
                if len(claimed) >= limit:
                    break
        return claimed

    def claim_run(self, run_id: int, *, now: datetime | None = None) -> Job | None:
        """Claim this one run if it is due and its connection runs no other; else ``None``."""
        with self._store.session() as session:
            return self._claim_on(session.connection(), run_id, now or self._clock())

    def _claim_on(self, db: Connection, run_id: int, now: datetime) -> Job | None:
        statements = _statements(db.dialect.name)
        claimed = db.execute(
            statements.claim, {"run_id": run_id, "now": now, "until": now + self._lease}
        )
        if claimed.rowcount != 1:
            return None
        attempts = db.execute(statements.attempts, {"run_id": run_id}).scalar()
        if attempts is None:
            return None
        return Job(id=run_id, kind=FETCH_CONNECTION, attempt=attempts)

    def renew(self, run_id: int) -> bool:
        """Extend the lease of a running run; False when it is no longer ours to run."""
        now = self._clock()
        with self._store.session() as session:
            result = session.connection().execute(
                update(FetchRun)
                .where(FetchRun.id == run_id, FetchRun.status == RUN_RUNNING)
                .values(claimed_until=now + self._lease, updated_at=now)
            )
            return bool(result.rowcount)

    # -- settling -------------------------------------------------------------------------

    def finish(self, settled: Sequence[Settled]) -> None:
        now = self._clock()
        connections: set[str] = set()
        with self._store.session() as session:
            for item in settled:
                row = session.get(FetchRun, item.job.id)
                if row is None:  # its connection was removed meanwhile
                    continue
                _settle(session, row, item, now)
                connections.add(row.connection_id)
        self._notify()
        if self.waker is not None and connections:
            self.waker.settled(connections)

    def requeue(self, run_id: int) -> str | None:
        """A running run that was cancelled (the worker stops): waiting again, due now, and
        its attempt not counted — or ``cancelled`` when another run of its connection waits.
        The state it was left in; ``None`` when the run is gone."""
        now = self._clock()
        with self._store.session() as session:
            row = session.get(FetchRun, run_id)
            if row is None:
                return None
            if row.status != RUN_RUNNING:  # settled or requeued already
                return row.status
            row.attempts = max(row.attempts - 1, 0)
            row.claimed_until = None
            row.updated_at = now
            if _another_waits(session, row):
                row.status = RUN_CANCELLED
                row.finished_at = now
                row.error_code = "cancelled"
                row.error_message = "cancelled; the fetch waiting after it brings the mirror up"
            else:
                row.status = RUN_QUEUED
                row.next_attempt_at = now
            state = row.status
            connection_id = row.connection_id
        self._notify()
        if self.waker is not None:
            self.waker.settled([connection_id])
        return state

    def release(self, jobs: Sequence[Job]) -> None:
        """The worker stopped while these ran: each run still running goes through
        :meth:`requeue`. One that the handler settled or requeued itself on its way out (it
        ended on its own meanwhile, or its cancelled git was requeued) is left as it is: a
        second requeue would reopen a finished run, or not count an attempt twice."""
        for job in jobs:
            with self._store.session() as session:
                row = session.get(FetchRun, job.id)
                still_running = row is not None and row.status == RUN_RUNNING
            if still_running:
                state = self.requeue(job.id)
                log.info("fetch run %d cancelled at shutdown: %s", job.id, state or "gone")

    def next_due(self, kinds: Collection[str]) -> datetime | None:
        if FETCH_CONNECTION not in kinds:
            return None
        now = self._clock()
        with self._store.session() as session:
            waiting = session.scalar(
                select(func.min(FetchRun.next_attempt_at)).where(FetchRun.status == RUN_QUEUED)
            )
            abandoned = session.scalar(
                select(func.min(FetchRun.claimed_until)).where(FetchRun.status == RUN_RUNNING)
            )
        moments = [moment for moment in (waiting, abandoned) if moment is not None]
        # A run whose connection is busy is not due before that fetch ends; the worker
        # finishing it wakes the others (:meth:`wait_for_change`), and polls besides.
        return max(min(moments), now) if moments else None

    # -- waiting for news -----------------------------------------------------------------

    def wait_for_change(self, generation: int, timeout: float) -> int:
        """Block until a run was enqueued or settled in this process after ``generation``
        (or ``timeout`` seconds passed); the current generation."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != generation, timeout)
            return self._generation

    @property
    def generation(self) -> int:
        with self._changed:
            return self._generation

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from any thread) whenever a run is enqueued or settled here."""
        with self._changed:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with self._changed:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not fail the request that notified
                log.exception("a fetch queue listener failed")


@dataclass(frozen=True)
class QueuedRun:
    """The waiting run a request got: its id, and whether the request created it."""

    id: int
    created: bool
    connection_id: str = ""
    due: datetime | None = None


@dataclass(frozen=True)
class _Statements:
    insert_waiting: Executable
    waiting_run: Executable
    bring_forward: Executable
    claim: Executable
    attempts: Executable


@functools.cache
def _statements(dialect: str) -> _Statements:
    """The statements of a request, built once per dialect: a request is the hot path of a
    burst of webhook deliveries, and building them costs more than running them."""
    return _Statements(
        insert_waiting=_insert_waiting(dialect),
        waiting_run=select(FetchRun.id).where(
            FetchRun.connection_id == bindparam("connection_id"), FetchRun.status == RUN_QUEUED
        ),
        bring_forward=update(FetchRun)
        .where(FetchRun.id == bindparam("run_id"), FetchRun.next_attempt_at > bindparam("due"))
        .values(next_attempt_at=bindparam("due")),
        # Claiming is the hot path of a no-op refresh: its ORM alias alone cost a millisecond.
        claim=update(FetchRun)
        .where(
            FetchRun.id == bindparam("run_id"),
            _due(bindparam("now")),
            ~_other_running(bindparam("now")),
        )
        .values(
            status=RUN_RUNNING,
            attempts=FetchRun.attempts + 1,
            claimed_until=bindparam("until"),
            started_at=bindparam("now"),
            updated_at=bindparam("now"),
        ),
        attempts=select(FetchRun.attempts).where(FetchRun.id == bindparam("run_id")),
    )


def _insert_waiting(dialect: str) -> Executable:
    """``INSERT … ON CONFLICT DO NOTHING`` on the waiting run's index, ``RETURNING`` the new
    run's id: a row when it inserted (PostgreSQL's rowcount said so for a conflict too)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return (
            sqlite_insert(FetchRun)
            .on_conflict_do_nothing(index_elements=["connection_id"], index_where=_waiting_index())
            .returning(FetchRun.id)
        )
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return (
            pg_insert(FetchRun)
            .on_conflict_do_nothing(index_elements=["connection_id"], index_where=_waiting_index())
            .returning(FetchRun.id)
        )
    # A backend without ON CONFLICT: the unique index still refuses a second one.
    return insert(FetchRun).returning(FetchRun.id)


def _waiting_index() -> ColumnElement[bool]:
    """The waiting-run index's predicate, its value written into the statement: PostgreSQL
    matches ON CONFLICT to a partial index when it plans, and a statement psycopg prepared
    (the 6th run on one connection) may get a generic plan, without the values of bound
    parameters — "no unique or exclusion constraint matching the ON CONFLICT specification"."""
    return FetchRun.status == literal_column(f"'{RUN_QUEUED}'")


def _due(now: datetime | BindParameter[Any]) -> ColumnElement[bool]:
    """Waiting and due; or running under a lease that ran out (its worker died)."""
    return or_(
        and_(FetchRun.status == RUN_QUEUED, FetchRun.next_attempt_at <= now),
        and_(FetchRun.status == RUN_RUNNING, FetchRun.claimed_until <= now),
    )


def _other_running(now: datetime | BindParameter[Any]) -> ColumnElement[bool]:
    other = aliased(FetchRun)
    return exists(
        select(other.id).where(
            other.connection_id == FetchRun.connection_id,
            other.id != FetchRun.id,
            other.status == RUN_RUNNING,
            other.claimed_until > now,
        )
    )


def _another_waits(session: Session, row: FetchRun) -> bool:
    return (
        session.scalar(
            select(FetchRun.id).where(
                FetchRun.connection_id == row.connection_id,
                FetchRun.status == RUN_QUEUED,
                FetchRun.id != row.id,
            )
        )
        is not None
    )


def _settle(session: Session, row: FetchRun, item: Settled, now: datetime) -> None:
    if row.status != RUN_RUNNING:
        # Settled already: cancelled and waiting again (a stopping worker may still report
        # the attempt), or finished by whoever ran it.
        return
    details = item.details
    row.claimed_until = None
    row.updated_at = now
    row.error_code = _text(details.get("error_code"), 64) if item.error else None
    row.error_message = _text(details.get("error_message") or item.error, MAX_ERROR_LENGTH)
    if item.state is State.DONE:
        row.status = RUN_DONE
        row.finished_at = now
        row.error_message = None
        row.new_commits = int(details.get("new_commits", 0))
        row.first_seq = details.get("first_seq")
        row.last_seq = details.get("last_seq")
        return
    if item.state is State.RETRY and not _another_waits(session, row):
        row.status = RUN_QUEUED
        row.next_attempt_at = item.retry_at
        return
    # Failed for good; or a retry that a run waiting after this one makes pointless.
    row.status = RUN_FAILED
    row.finished_at = now
    row.next_attempt_at = None


def _text(value: object, limit: int) -> str | None:
    if value is None:
        return None
    return str(value)[:limit]


__all__ = ["FETCH_CONNECTION", "FETCH_LEASE", "WAITING_ONLY", "FetchQueue", "QueuedRun", "Waker"]
