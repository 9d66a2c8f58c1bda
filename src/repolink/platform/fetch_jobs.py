"""The ``fetch_connection`` job: one fetch run carried out, and the worker that runs them.

:func:`execute_run` is one attempt, in the calling thread: it fetches the run's connection
through :meth:`repolink.platform.fetch.FetchService.fetch_connection` (which records the
connection's state, a definitive failure included; git's progress goes on the run's row,
:mod:`repolink.platform.fetch_progress`) and says what became of it as an
:class:`~repolink.jobs.queue.Outcome` — the new commits and the index ``seq`` range they got,
or the error code and whether trying again can help (:data:`TRANSIENT_CODES`: the network, a
timeout, a busy mirror or database). While it runs, the queue's
:class:`~repolink.platform.fetch_leases.LeaseKeeper` renews the run's
lease, so no other worker takes it for abandoned.

:class:`FetchJobHandler` is the handler a worker registers under ``fetch_connection``
(:class:`repolink.platform.fetch_worker.FetchWorker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, select

from repolink.errors import RepolinkError
from repolink.git.cancel import CANCELLED
from repolink.jobs import Job, Outcome, RetryPolicy
from repolink.jobs.retry import settle
from repolink.jobs.worker import describe_error
from repolink.platform.fetch import FetchService
from repolink.platform.fetch_progress import ProgressRecorder
from repolink.platform.fetch_queue import FetchQueue
from repolink.store import Store, utcnow
from repolink.store.models.fetch_runs import FetchRun
from repolink.store.models.platform import Commit

log = logging.getLogger(__name__)

# Failures that may pass by themselves: the same fetch later can succeed. Everything else
# (auth_failed, repo_not_found, host keys, a bad URL or key, a malformed object, a connection
# that is gone) fails for good at once: trying again would only repeat the refusal.
TRANSIENT_CODES = frozenset(
    {
        "timeout",
        "dns_failed",
        "connection_refused",
        "git_failed",
        "mirror_busy",
        "store_unavailable",
    }
)
# Fetches of different connections at once, by default, in a server.
DEFAULT_FETCH_CONCURRENCY = 4
# A fetch is retried after 10 s, 20 s, 40 s, 80 s: a host back within minutes is fetched.
FETCH_RETRY_POLICY = RetryPolicy(max_attempts=5, base_delay=10.0, max_delay=600.0)
STOP_TIMEOUT = 15.0


# The trigger of a fetch queued by a push to this server's own host (hosted_pushes).
PUSH_TRIGGER = "push"


@dataclass(frozen=True)
class _Target:
    connection_id: str
    seq_before: int
    trigger: str


def execute_run(
    store: Store, fetches: FetchService, job: Job, *, cancel: threading.Event | None = None
) -> Outcome:
    """One attempt at fetch run ``job.id``, in this thread; never raises for a fetch error.

    Setting ``cancel`` stops the fetch; the outcome is then :func:`was_cancelled`.
    """
    target = _load(store, job.id)
    if target is None:
        return Outcome.failed("the fetch run or its connection was removed", transient=False)
    subject = f"fetch run {job.id}"
    progress = ProgressRecorder(store, job.id, job.attempt, interval=fetches.progress_interval)
    try:
        result = fetches.fetch_connection(
            target.connection_id,
            on_progress=progress,
            cancel=cancel,
            # A push to this server's own host changed its refs: asking first would only cost
            # a round trip before the fetch that follows anyway.
            refs_changed=target.trigger == PUSH_TRIGGER,
        )
    except RepolinkError as exc:
        transient = exc.code in TRANSIENT_CODES
        return Outcome.failed(
            exc.code,
            transient=transient,
            details={"error_code": exc.code, "error_message": exc.message},
            subject=subject,
        )
    except Exception as exc:  # a bug fails this run, never the worker
        log.exception("%s: the fetch failed unexpectedly", subject)
        return Outcome.failed(
            describe_error(exc),
            transient=False,
            details={"error_code": "internal_error", "error_message": "the fetch failed"},
            subject=subject,
        )
    # Nothing indexed, nothing numbered: a refresh that found nothing new reads no more.
    first_seq, last_seq = _added_range(store, target) if result.new_commits else (None, None)
    return Outcome.done(
        details={
            "new_commits": result.new_commits,
            "first_seq": first_seq,
            "last_seq": last_seq,
        },
        subject=subject,
    )


def was_cancelled(outcome: Outcome) -> bool:
    return not outcome.ok and outcome.details.get("error_code") == CANCELLED


def _load(store: Store, run_id: int) -> _Target | None:
    # Every fetch starts here, a refresh that finds nothing new too: one plain read.
    with store.reading() as db:
        row = db.execute(_target_statement(), {"run_id": run_id}).first()
    if row is None:
        return None
    return _Target(row.connection_id, int(row.seq or 0), row.trigger)


@functools.cache
def _target_statement() -> Select[Any]:
    highest = (
        select(func.max(Commit.seq))
        .where(Commit.connection_id == FetchRun.connection_id)
        .scalar_subquery()
        .label("seq")
    )
    return select(FetchRun.connection_id, FetchRun.trigger, highest).where(
        FetchRun.id == bindparam("run_id")
    )


def _added_range(store: Store, target: _Target) -> tuple[int | None, int | None]:
    """The ``seq`` numbers the index gave this fetch's commits: everything above the highest
    before it (fetches of one mirror never overlap: its lock)."""
    with store.session() as session:
        seq = session.scalar(
            select(func.max(Commit.seq)).where(Commit.connection_id == target.connection_id)
        )
    if seq is None or seq <= target.seq_before:
        return None, None
    return target.seq_before + 1, int(seq)


def lease_kept(queue: FetchQueue, run_id: int) -> contextlib.AbstractContextManager[None]:
    """Renew the run's lease every third of it while the body runs
    (:meth:`FetchQueue.keep_lease`)."""
    return queue.keep_lease(run_id)


class FetchJobHandler:
    """The ``fetch_connection`` handler: :func:`execute_run` in a thread, its lease kept.

    An attempt whose task is cancelled (a worker stopping after its grace) stops its git, and
    its run waits again (:meth:`repolink.platform.fetch_queue.FetchQueue.requeue`) for the next
    worker to start, before the cancellation goes through; one that ended on its own meanwhile
    is recorded as it ended.
    """

    def __init__(self, store: Store, fetches: FetchService, queue: FetchQueue) -> None:
        self._store = store
        self._fetches = fetches
        self._queue = queue

    async def __call__(self, job: Job) -> Outcome:
        cancel = threading.Event()
        attempt = asyncio.ensure_future(asyncio.to_thread(self.run, job, cancel))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            cancel.set()
            outcome = await attempt
            if not was_cancelled(outcome):  # it ended on its own meanwhile: keep what it did
                await asyncio.to_thread(
                    self._queue.finish, [settle(job, outcome, FETCH_RETRY_POLICY, utcnow())]
                )
            raise

    def run(self, job: Job, cancel: threading.Event | None = None) -> Outcome:
        with lease_kept(self._queue, job.id):
            outcome = execute_run(self._store, self._fetches, job, cancel=cancel)
        if was_cancelled(outcome):
            state = self._queue.requeue(job.id)
            log.info("fetch run %d cancelled; it is %s", job.id, state or "gone")
        return outcome
