"""The jobs backend on PostgreSQL: procrastinate, a PostgreSQL-backed distributed task queue.

On the embedded SQLite default, jobs are rows claimed by in-process workers
(:mod:`repolink.jobs.table`, :mod:`repolink.jobs.worker`). On PostgreSQL the same rows stay
the record of each job (a fetch run, a webhook delivery: what the pages and the API show), and
procrastinate carries the work to any number of worker processes on any machines:

- a procrastinate job is a *wake-up*: "carry out what waits under this key, at this time".
  Its task claims the record (the record's own claim still guards it), runs the handler,
  settles the record, and — when the record is due again (a retry with backoff, decided by
  :class:`repolink.jobs.retry.RetryPolicy`: transient failures only) — defers the next
  wake-up itself. procrastinate's own ``retry_job`` is not used: a retried job becomes
  ``todo`` again, which collides with the ``queueing_lock`` of a wake-up deferred meanwhile;
  deferring anew turns that collision into ``AlreadyEnqueued``, which is success.
- ``lock`` (one job of a key running) and ``queueing_lock`` (one waiting; a later deferral
  joins it) are procrastinate's, given per deferral (:meth:`ProcrastinateJobs.defer`);
- periodic tasks are procrastinate's (:meth:`ProcrastinateJobs.periodic`): each tick is
  deferred once across all workers, however many run;
- a worker that dies (SIGKILL, a lost machine) stops sending heartbeats; every worker runs
  :data:`RETRY_STALLED`, a periodic task that gives the jobs of workers silent for
  ``stalled_after`` seconds back to the queue, so another worker runs them.

Deferring is synchronous (services run in threads) and goes through its own small pool; a
worker (:meth:`ProcrastinateJobs.run_worker`) opens an asynchronous one. Nothing connects
before it is first needed. procrastinate's schema is applied by the store's migrations
(``0024``), versioned with repolink's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url

from repolink.jobs.queue import Job, Outcome, State
from repolink.jobs.retry import RetryPolicy, settle
from repolink.jobs.table import TableQueue
from repolink.jobs.worker import describe_error
from repolink.store import utcnow

log = logging.getLogger(__name__)

QUEUE = "repolink"
"""The queue of every task but those given one of their own (fetches: a server with
``--workers 0`` runs deliveries and periodic tasks, and no fetch)."""
RETRY_STALLED = "repolink_retry_stalled_jobs"
# procrastinate's defaults: a heartbeat every 10 s, a worker silent for 30 s is dead.
HEARTBEAT_INTERVAL = 10.0
STALLED_AFTER = 30.0
STALLED_CHECK_CRON = "* * * * * */10"  # every 10 seconds (the 6th field is seconds)
SHUTDOWN_GRACE = 15.0
# A job deferred for now wakes an idle worker at once (LISTEN/NOTIFY); one scheduled for later
# (a webhook's gathering second, a retry) is found by polling, this often — procrastinate's
# default of 5 s would add up to that to a webhook's fetch.
FETCH_JOB_POLLING_INTERVAL = 0.5
# Pauses before a worker that stopped on an error (its database gone) is started again.
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0)
# A wake-up that found its job not due (or, for a fetch, its connection busy) is not
# repeated sooner than this.
RECHECK = timedelta(seconds=1)
# The sweeps of wake-ups lost with their process: every minute; a table's jobs once they are
# due for longer than a wake-up takes.
SWEEP_CRON = "* * * * *"
SWEEP_GRACE = timedelta(seconds=30)

Task = Callable[..., Awaitable[Any]]

# A worker named %(worker)s is connected (its connections' application_name, run_worker).
_LISTENING = "EXISTS (SELECT FROM pg_stat_activity WHERE application_name = %(worker)s)"
# A waiting job (``waiting``) that no running job of its lock holds back.
_NOT_HELD = (
    "NOT EXISTS (SELECT FROM procrastinate_jobs AS running"
    " WHERE running.status = 'doing' AND running.lock = waiting.lock)"
)


def is_postgresql(database_url: str) -> bool:
    """Whether a SQLAlchemy database URL names a PostgreSQL database."""
    return make_url(database_url).get_backend_name() == "postgresql"


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://``
    → ``postgresql://``). It holds the password: never log it."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ProcrastinateJobs:
    """One application's procrastinate: its tasks, deferring, and workers.

    Register every task (:meth:`task`, :meth:`periodic`) before the first deferral or worker.
    """

    def __init__(
        self,
        database_url: str,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        stalled_after: float = STALLED_AFTER,
        stalled_check_cron: str = STALLED_CHECK_CRON,
        shutdown_grace: float = SHUTDOWN_GRACE,
    ) -> None:
        import procrastinate

        self._conninfo = conninfo(database_url)
        self._heartbeat_interval = heartbeat_interval
        self._stalled_after = stalled_after
        self._shutdown_grace = shutdown_grace
        self._open_lock = threading.Lock()
        self._opened = False
        self._queues: dict[str, str] = {}
        # The tasks, and the workers' connections (asynchronous, opened by run_worker).
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self._conninfo, min_size=1, max_size=4
            )
        )
        # Deferring from any thread: synchronous connections of their own. It knows no task:
        # a job names its task, which the workers know.
        self._deferrer = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(
                conninfo=self._conninfo, min_size=0, max_size=4
            )
        )
        self.app.periodic(cron=stalled_check_cron, periodic_id="stalled")(
            self.app.task(name=RETRY_STALLED, queue=QUEUE, pass_context=True)(self._retry_stalled)
        )

    @property
    def stalled_after(self) -> float:
        """Seconds without a heartbeat after which a worker's jobs go to the others."""
        return self._stalled_after

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between a worker's heartbeats."""
        return self._heartbeat_interval

    # -- tasks ------------------------------------------------------------------------------

    def task(self, name: str, function: Task, *, queue: str = QUEUE) -> None:
        """Register ``function(**args)`` as the task ``name``, whose jobs wait in ``queue``."""
        self._queues[name] = queue
        self.app.task(name=name, queue=queue)(function)

    def periodic(self, name: str, cron: str, function: Callable[[], Awaitable[object]]) -> None:
        """Run ``function()`` on ``cron``'s schedule (5 fields, or 6 with seconds last): each
        tick runs once across all workers."""

        async def tick(timestamp: int) -> None:
            await function()

        tick.__name__ = tick.__qualname__ = name
        self.app.periodic(cron=cron, periodic_id=name)(self.app.task(name=name, queue=QUEUE)(tick))

    # -- deferring --------------------------------------------------------------------------

    def defer(
        self,
        name: str,
        args: Mapping[str, Any],
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        at: datetime | None = None,
        queue: str | None = None,
    ) -> int | None:
        """A wake-up of task ``name`` with ``args``, due ``at`` (default now), in ``queue``
        (default: the task's); its job id, or ``None`` when a job with ``queueing_lock`` waits
        already, in any queue — which is success: that job carries out whatever waits under
        the key when it runs."""
        from procrastinate.exceptions import AlreadyEnqueued

        self._open()
        deferrer = self._deferrer.configure_task(
            name,
            lock=lock,
            queueing_lock=queueing_lock,
            schedule_at=at,
            queue=queue or self._queues.get(name, QUEUE),
        )
        try:
            job_id: int = deferrer.defer(**args)
        except AlreadyEnqueued:
            self._bring_forward(queueing_lock, at)
            return None
        return job_id

    def _bring_forward(self, queueing_lock: str | None, at: datetime | None) -> None:
        """The waiting job of ``queueing_lock`` runs no later than ``at`` (default now): a
        deferral joining it must not wait longer than it asked for."""
        if queueing_lock is None:
            return
        self._deferrer.connector.execute_query(
            "UPDATE procrastinate_jobs SET scheduled_at = COALESCE(%(at)s, now())"
            " WHERE queueing_lock = %(queueing_lock)s AND status = 'todo'"
            " AND scheduled_at > COALESCE(%(at)s, now())",
            at=at,
            queueing_lock=queueing_lock,
        )

    def listening(self, name: str) -> bool:
        """Whether a worker named ``name`` (:meth:`run_worker`) is connected to the database
        now. Its connections carry the name as their ``application_name``, and a process that
        dies loses them with it: unlike a heartbeat, this needs no timeout."""
        return self._ask(f"SELECT {_LISTENING} AS answer", worker=name)

    def ready(self, queue: str) -> bool:
        """Whether the worker whose own queue is ``queue``, and which is named after it, runs
        (:meth:`listening`) and would start a job of it now: no job there is due and waiting
        already, unless one that a running job of its lock holds back (a waiting due job means
        every slot of the worker is busy)."""
        return self._ask(
            f"SELECT {_LISTENING} AND NOT EXISTS (SELECT FROM procrastinate_jobs AS waiting"  # noqa: S608 (fixed fragments; values bound)
            "  WHERE waiting.queue_name = %(worker)s AND waiting.status = 'todo'"
            f"  AND COALESCE(waiting.scheduled_at, '-infinity') <= now() AND {_NOT_HELD})"
            " AS answer",
            worker=queue,
        )

    def _ask(self, query: str, **arguments: Any) -> bool:
        self._open()
        row = self._deferrer.connector.execute_query_one(query, **arguments)
        return bool(row["answer"])

    def move_overdue(self, prefix: str, target: str, overdue: timedelta) -> int:
        """Move to queue ``target`` the waiting jobs of the queues named ``prefix…`` that are
        due for longer than ``overdue`` (or have no due time: a dead worker's job given back)
        and that no running job holds back by its lock; how many moved."""
        self._open()
        row = self._deferrer.connector.execute_query_one(
            "WITH moved AS ("  # noqa: S608 (fixed fragments; values bound)
            " UPDATE procrastinate_jobs AS waiting SET queue_name = %(target)s"
            " WHERE waiting.status = 'todo' AND starts_with(waiting.queue_name, %(prefix)s)"
            " AND COALESCE(waiting.scheduled_at, '-infinity') < now() - %(overdue)s"
            f" AND {_NOT_HELD} RETURNING waiting.id)"
            " SELECT count(*) AS moved FROM moved",
            target=target,
            prefix=prefix,
            overdue=overdue,
        )
        return int(row["moved"])

    def _open(self) -> None:
        if self._opened:
            return
        with self._open_lock:
            if not self._opened:
                self._deferrer.open()
                self._opened = True

    # -- workers ----------------------------------------------------------------------------

    @property
    def queues(self) -> list[str]:
        """Every queue a task was registered in."""
        return sorted({QUEUE, *self._queues.values()})

    async def run_worker(
        self,
        *,
        concurrency: int,
        name: str = "repolink-worker",
        queues: Iterable[str] | None = None,
    ) -> None:
        """Run jobs of ``queues`` (default: all), ``concurrency`` at a time, until cancelled;
        cancelled, it stops fetching jobs and gives the running ones the shutdown grace
        before they are cancelled. Its connections are named ``name`` (:meth:`listening`)."""
        import procrastinate

        connector = procrastinate.PsycopgConnector(
            conninfo=self._conninfo,
            min_size=1,
            max_size=4,
            kwargs={"application_name": name},
        )
        with self.app.replace_connector(connector):
            async with self.app.open_async():
                await self.app.run_worker_async(
                    queues=list(queues) if queues is not None else self.queues,
                    name=name,
                    concurrency=max(concurrency, 1),
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=self._shutdown_grace,
                    fetch_job_polling_interval=FETCH_JOB_POLLING_INTERVAL,
                    update_heartbeat_interval=self._heartbeat_interval,
                    stalled_worker_timeout=self._stalled_after,
                    delete_jobs="successful",
                )

    async def _retry_stalled(self, context: Any, timestamp: int) -> None:
        """Give the jobs of dead workers (no heartbeat for ``stalled_after`` s) back to the
        queue. One whose key has a waiting job already is closed instead: that job carries
        out whatever waits under the key."""
        from procrastinate.exceptions import UniqueViolation
        from procrastinate.jobs import Status

        manager = context.app.job_manager
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=self._stalled_after)
        for job in stalled:
            try:
                await manager.retry_job(job)
                log.warning("job %s of a dead worker is queued again", job.call_string)
            except UniqueViolation:
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
                log.warning("job %s of a dead worker closed: one waits already", job.call_string)

    def close(self) -> None:
        with self._open_lock:
            if self._opened:
                self._deferrer.close()
                self._opened = False


class ProcrastinateWorker:
    """A process's procrastinate worker, run in the background while any part of the process
    holds it: each :meth:`start` is one hold, each :meth:`stop` gives one back, and the last
    one stops the worker (the fetch worker and the webhook deliverer of one server share it)."""

    def __init__(
        self,
        jobs: ProcrastinateJobs,
        *,
        concurrency: int,
        name: str,
        queues: Iterable[str] | None = None,
    ) -> None:
        self._jobs = jobs
        self._concurrency = concurrency
        self._name = name
        self._queues = list(queues) if queues is not None else None
        self._holds = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def queues(self) -> list[str]:
        """The queues whose jobs this worker runs."""
        return self._queues if self._queues is not None else self._jobs.queues

    async def start(self) -> None:
        self._holds += 1
        if self._task is None:
            log.info("job worker %s: queues %s", self._name, ", ".join(self.queues))
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        """Run the worker until cancelled. procrastinate's worker ends when its database goes
        away (its LISTEN connection fails): it is started again after a pause, longer after
        each failure in a row, so that the process carries on once the database is back;
        the jobs it held are given back by their missing heartbeats."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self._jobs.run_worker(
                    concurrency=self._concurrency, name=self._name, queues=self._queues
                )
                reason = "it ended"
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
            if time.monotonic() - started > RESTART_DELAYS[-1]:
                failures = 0  # it had been working: this is a new outage
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            failures += 1
            log.warning("the job worker stopped (%s); starting it again in %g s", reason, delay)
            await asyncio.sleep(delay)

    async def stop(self, grace: float | None = None) -> None:
        """Give back one hold; the last stops fetching jobs, lets the running ones finish
        within the shutdown grace, then cancels them (they are retried by the next worker)."""
        self._holds = max(self._holds - 1, 0)
        task = self._task
        if task is None or self._holds:
            return
        self._task = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class TableDispatch:
    """Jobs of one kind kept in a table (:class:`~repolink.jobs.table.TableQueue`: a webhook
    delivery's row), carried out by procrastinate: one wake-up per job, deferred by
    :meth:`wake` once the row is committed. The row's claim still guards each attempt.

    A wake-up lost between the row's commit and its deferral (the process killed in that
    instant, the database gone a moment) is made good by the periodic task ``<kind>_sweep``
    (:meth:`sweep`), which wakes every job due for longer than :data:`SWEEP_GRACE`; each job
    has at most one wake-up waiting (``queueing_lock`` ``<kind>:<id>``), so a sweep that wakes
    a job already woken costs nothing.

    ``handler`` opens what runs an attempt (a sender with its HTTP client) for one job.
    """

    def __init__(
        self,
        jobs: ProcrastinateJobs,
        queue: TableQueue,
        kind: str,
        handler: Callable[[], AbstractAsyncContextManager[Callable[[Job], Awaitable[Outcome]]]],
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._jobs = jobs
        self._queue = queue
        self._kind = kind
        self._handler = handler
        self._policy = policy or RetryPolicy()
        jobs.task(kind, self.run)
        jobs.periodic(f"{kind}_sweep", SWEEP_CRON, self.sweep)

    def wake(self, job_ids: Iterable[int], at: datetime | None = None) -> None:
        """Defer a wake-up of each job; never raises (the job stays pending in its table, and
        the sweep wakes it)."""
        for job_id in job_ids:
            try:
                self._jobs.defer(
                    self._kind,
                    {"job_id": job_id},
                    queueing_lock=f"{self._kind}:{job_id}",
                    at=at,
                )
            except Exception:
                log.exception("cannot defer %s job %d", self._kind, job_id)

    async def sweep(self) -> list[int]:
        """Wake the jobs due for longer than :data:`SWEEP_GRACE`; their ids."""
        overdue = await asyncio.to_thread(self._queue.overdue, self._kind, utcnow() - SWEEP_GRACE)
        if overdue:
            log.warning("%d %s jobs had no wake-up: woken", len(overdue), self._kind)
            await asyncio.to_thread(self.wake, overdue)
        return overdue

    async def run(self, job_id: int) -> None:
        """The task: one attempt at the job, settled; the next wake-up deferred when it is
        due again (a transient failure with attempts left, or not due yet)."""
        job = await asyncio.to_thread(self._queue.claim_one, self._kind, job_id)
        if job is None:
            due = await asyncio.to_thread(self._queue.due_at, self._kind, job_id)
            if due is not None:
                await asyncio.to_thread(self.wake, [job_id], max(due, utcnow() + RECHECK))
            return
        try:
            async with self._handler() as handler:
                outcome = await handler(job)
        except asyncio.CancelledError:
            # The worker stops: the attempt is given back uncounted, due again now.
            await asyncio.to_thread(self._queue.release, [job])
            await asyncio.to_thread(self.wake, [job_id])
            raise
        except Exception as exc:  # a handler's bug fails its job, never the worker
            log.exception("%s job %d: the handler failed", self._kind, job_id)
            outcome = Outcome.failed(describe_error(exc))
        settled = settle(job, outcome, self._policy, utcnow())
        await asyncio.to_thread(self._queue.finish, [settled])
        if settled.state is State.RETRY:
            await asyncio.to_thread(self.wake, [job_id], settled.retry_at)
