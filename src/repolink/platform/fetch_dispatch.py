"""Fetch runs carried out by procrastinate's workers (PostgreSQL).

The ``fetch_runs`` rows stay what they are on SQLite — the queue's one waiting and one running
run per connection (:mod:`repolink.platform.fetch_queue`), the fetch history — and
:class:`FetchDispatch` gets them carried out by any worker of any process:

- a procrastinate job of task ``fetch_connection`` is a *wake-up* of one connection, deferred
  with ``lock`` = ``queueing_lock`` = ``fetch:<connection id>``. ``lock``: one wake-up of a
  connection runs at a time, so two workers never fetch one connection at once.
  ``queueing_lock``: at most one waits; deferring another while one waits raises
  ``AlreadyEnqueued``, which is success — the waiting one carries out the connection's waiting
  run whenever it runs (an earlier due time is brought forward).
- the wake-up claims the connection's due run (a run abandoned by a dead process first), runs
  it, settles it; the queue then tells :meth:`FetchDispatch.settled`, which defers the next
  wake-up when a run waits behind it or the failed one is due again (a retry with backoff,
  transient failures only, as on SQLite). A wake-up that finds the run not due (a webhook's
  gathering window) or its connection busy (a fetch carried out by an API request's thread)
  defers the next one for when it is.
- a request queues its run in the database and defers a wake-up once that committed
  (:meth:`FetchDispatch.waiting`). Whatever is lost between (a process killed in that instant)
  is found by :data:`SWEEP`, a periodic task waking every connection with a run due.
- polling is the periodic task :data:`POLL`: one pass per tick across all workers.

Affinity, where it is cheap and never a condition of correctness: a worker fetching a
connection it never fetched first clones its mirror (its own cache, under its data
directory), so a wake-up goes to the worker that last fetched the connection successfully
(``repository_connections.fetched_by``, its :func:`repolink.jobs.identity.worker_id`) — into
that worker's own queue, :func:`worker_queue`, which it listens on besides the shared
:data:`FETCH_QUEUE` — while that worker is connected to the database and no due wake-up waits
in its queue already (it has a free slot); else to the shared queue, which any worker takes.
The ``lock`` and ``queueing_lock`` are global across queues: still one running and one waiting
per connection. A wake-up waiting in a worker's queue for longer than ``rehome_after`` past
its due time (its worker died or hangs) is moved to the shared queue by the periodic task
:data:`REHOME`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update

from repolink.jobs.procrastinate_backend import RECHECK, SWEEP_CRON, ProcrastinateJobs
from repolink.jobs.retry import settle
from repolink.platform.fetch_jobs import FetchJobHandler
from repolink.platform.fetch_queue import FETCH_CONNECTION
from repolink.store.models.fetch_runs import RUN_QUEUED, RUN_RUNNING, FetchRun
from repolink.store.models.platform import RepositoryConnection
from repolink.store.types import utcnow

if TYPE_CHECKING:
    from repolink.platform.fetch_requests import FetchRequestService

log = logging.getLogger(__name__)

# The fetches' own queue: a server running no fetch (``--workers 0``) leaves it to others.
FETCH_QUEUE = "repolink-fetches"
SWEEP = "repolink_fetch_sweep"
POLL = "repolink_fetch_polling"
POLL_CRON = "* * * * * */30"  # every 30 seconds, as a SQLite server's pass
REHOME = "repolink_fetch_rehome"
# Every 5 seconds, not the sweep's minute: the bound on how long affinity may delay a fetch.
REHOME_CRON = "* * * * * */5"
REHOME_AFTER = timedelta(seconds=5)


def fetch_lock(connection_id: str) -> str:
    """The ``lock`` and ``queueing_lock`` of a connection's wake-ups."""
    return f"fetch:{connection_id}"


def worker_queue(worker: str) -> str:
    """The own fetch queue of the worker ``worker`` — also the name its database connections
    carry while it runs (:meth:`ProcrastinateJobs.listening`)."""
    return f"{FETCH_QUEUE}@{worker}"


class FetchDispatch:
    """The fetch queue's :class:`~repolink.platform.fetch_queue.Waker` on procrastinate, and
    the fetch tasks it registers."""

    def __init__(
        self,
        jobs: ProcrastinateJobs,
        requests: Callable[[], FetchRequestService],
        *,
        worker: Callable[[], str],
        rehome_after: timedelta = REHOME_AFTER,
        rehome_cron: str = REHOME_CRON,
    ) -> None:
        """``worker``: this process's worker id (read when it first carries out a fetch)."""
        self._jobs = jobs
        self._requests = requests
        self._worker = worker
        self._rehome_after = rehome_after
        jobs.task(FETCH_CONNECTION, self.run, queue=FETCH_QUEUE)
        jobs.periodic(SWEEP, SWEEP_CRON, self.sweep)
        jobs.periodic(POLL, POLL_CRON, self.poll)
        jobs.periodic(REHOME, rehome_cron, self.rehome)

    # -- the queue's waker ------------------------------------------------------------------

    def waiting(self, connection_id: str, due: datetime) -> None:
        self.wake(connection_id, due)

    def settled(self, connection_ids: Collection[str]) -> None:
        for connection_id in connection_ids:
            self.wake_next(connection_id)

    def wake(self, connection_id: str, at: datetime | None) -> None:
        """Defer a wake-up of the connection at ``at``; never raises (the sweep heals a lost
        one: the run waits in the database)."""
        lock = fetch_lock(connection_id)
        queue = self.queue_for(connection_id)
        if queue != FETCH_QUEUE:
            # A due time, so that the rehoming can tell how long it has waited.
            at = at or utcnow()
        try:
            self._jobs.defer(
                FETCH_CONNECTION,
                {"connection_id": connection_id},
                lock=lock,
                queueing_lock=lock,
                at=at,
                queue=queue,
            )
        except Exception:
            log.exception("cannot defer the fetch of connection %s; the sweep will", connection_id)

    def queue_for(self, connection_id: str) -> str:
        """The queue of the connection's next wake-up: the own queue of the worker that last
        fetched it while that worker is connected and keeps up (a burst of fetches is spread
        over every worker: waiting for a busy worker's warm mirror would cost more than a cold
        one elsewhere, for most repositories), else the shared one; never raises."""
        try:
            with self._requests().store.session() as session:
                worker = session.scalar(
                    select(RepositoryConnection.fetched_by).where(
                        RepositoryConnection.id == connection_id
                    )
                )
            if worker is None:
                return FETCH_QUEUE
            queue = worker_queue(worker)
            return queue if self._jobs.ready(queue) else FETCH_QUEUE
        except Exception:
            log.warning("no affinity for connection %s", connection_id, exc_info=True)
            return FETCH_QUEUE

    def wake_next(
        self, connection_id: str, *, not_before: datetime | None = None, held: bool = False
    ) -> None:
        """Wake the connection when its next run is due, if one waits or was abandoned;
        ``held``: also when only a running run holds it — at its lease's end, for a holder
        that dies (a wake-up that runs while a run is held knows its holder is no worker of
        procrastinate's, whose lock would have kept it back: an API request's thread, or a
        worker killed meanwhile)."""
        moment = next_moment(self._requests(), connection_id, held=held)
        if moment is None:
            return
        if not_before is not None:
            moment = max(moment, not_before)
        self.wake(connection_id, moment)

    # -- the tasks --------------------------------------------------------------------------

    async def run(self, connection_id: str) -> None:
        """The ``fetch_connection`` task: carry out the connection's due run, if any."""
        requests = self._requests()
        queue = requests.queue
        job = await asyncio.to_thread(claim_connection, requests, connection_id)
        if job is None:  # not due yet, or busy elsewhere: wake up again when it may be
            await asyncio.to_thread(
                self.wake_next, connection_id, not_before=utcnow() + RECHECK, held=True
            )
            return
        handler = FetchJobHandler(requests.store, requests.fetches, queue)
        try:
            outcome = await handler(job)
        except asyncio.CancelledError:
            # The worker stops: the handler put the run back to waiting, and the queue
            # deferred its next wake-up, which another worker (or the next start) takes.
            raise
        if outcome.ok:  # before settling: a run waiting behind is woken towards this worker
            await asyncio.to_thread(self._fetched_here, connection_id)
        await asyncio.to_thread(queue.finish, [settle(job, outcome, requests.policy, utcnow())])

    def _fetched_here(self, connection_id: str) -> None:
        """Record that this worker's mirror holds the connection's latest fetch; never raises
        (affinity is an optimisation)."""
        try:
            worker = self._worker()
            with self._requests().store.session() as session:
                session.execute(
                    update(RepositoryConnection)
                    .where(
                        RepositoryConnection.id == connection_id,
                        or_(
                            RepositoryConnection.fetched_by.is_(None),
                            RepositoryConnection.fetched_by != worker,
                        ),
                    )
                    .values(fetched_by=worker)
                )
        except Exception:
            log.warning("cannot record the fetcher of connection %s", connection_id, exc_info=True)

    async def sweep(self) -> None:
        """Wake every connection with a run due (a wake-up lost with its process)."""
        requests = self._requests()
        for connection_id in await asyncio.to_thread(connections_due, requests):
            await asyncio.to_thread(self.wake_next, connection_id)

    async def rehome(self) -> None:
        """Move the wake-ups that waited too long in a worker's own queue to the shared one."""
        moved = await asyncio.to_thread(
            self._jobs.move_overdue, worker_queue(""), FETCH_QUEUE, self._rehome_after
        )
        if moved:
            log.info("%d fetch wake-ups waited too long for their worker: moved to any", moved)

    async def poll(self) -> None:
        """The polling pass: request the fetches of the connections whose poll is due."""
        requests = self._requests()
        runs = await asyncio.to_thread(requests.poll_due)
        if runs:
            log.info("polling: fetch runs %s", ", ".join(str(run.id) for run in runs))


def claim_connection(requests: FetchRequestService, connection_id: str) -> Any:
    """Claim the connection's due run — one abandoned by a dead process first, then the
    waiting one; the claimed job, or ``None``."""
    now = utcnow()
    with requests.store.session() as session:
        candidates = list(
            session.scalars(
                select(FetchRun.id)
                .where(
                    FetchRun.connection_id == connection_id,
                    or_(
                        (FetchRun.status == RUN_RUNNING) & (FetchRun.claimed_until <= now),
                        (FetchRun.status == RUN_QUEUED) & (FetchRun.next_attempt_at <= now),
                    ),
                )
                .order_by(FetchRun.id)
            )
        )
    for run_id in candidates:
        job = requests.queue.claim_run(run_id, now=now)
        if job is not None:
            return job
    return None


def next_moment(
    requests: FetchRequestService, connection_id: str, *, held: bool = False
) -> datetime | None:
    """When the connection's waiting run may be claimed: its due time, or while another run
    holds the connection, when that one's lease ends (whoever runs it wakes the connection
    sooner when it ends); ``None``: nothing waits, or only a held run (its holder, or for a
    dead one the sweep, wakes the connection) — unless ``held``: then its lease's end."""
    with requests.store.session() as session:
        waiting = session.scalar(
            select(func.min(FetchRun.next_attempt_at)).where(
                FetchRun.connection_id == connection_id, FetchRun.status == RUN_QUEUED
            )
        )
        lease_end = session.scalar(
            select(func.min(FetchRun.claimed_until)).where(
                FetchRun.connection_id == connection_id, FetchRun.status == RUN_RUNNING
            )
        )
    if lease_end is not None and waiting is not None:
        return max(waiting, lease_end)
    return waiting if lease_end is None else (lease_end if held else None)


def connections_due(requests: FetchRequestService) -> list[str]:
    """Connections with a waiting run, or a running one whose lease ran out."""
    now = utcnow()
    with requests.store.session() as session:
        return list(
            session.scalars(
                select(FetchRun.connection_id)
                .where(
                    or_(
                        FetchRun.status == RUN_QUEUED,
                        (FetchRun.status == RUN_RUNNING) & (FetchRun.claimed_until <= now),
                    )
                )
                .distinct()
            )
        )
