"""A worker: claims due jobs from a queue and runs each with the handler of its kind.

In a server: ``await start()`` once, :meth:`Worker.wake` when work was enqueued, ``await
stop()`` at shutdown; jobs left pending by a previous run are picked up on start, and jobs
other processes enqueue are found by polling. For a one-shot process: ``await drain()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from repolink.jobs.queue import Job, JobQueue, Outcome, Settled, State
from repolink.jobs.retry import RetryPolicy, settle
from repolink.store import utcnow

log = logging.getLogger(__name__)

# A worker also looks for work this often, to pick up what other processes enqueued.
POLL_INTERVAL = 30.0
# After an unexpected failure of a whole pass, wait this long before the next one.
ERROR_BACKOFF = 5.0
MAX_ERROR_LENGTH = 300
FIRST = asyncio.FIRST_COMPLETED

Handler = Callable[[Job], Awaitable[Outcome]]


class HandlerRegistry:
    """Which handler runs the jobs of which kind; a worker claims only kinds it can run."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind!r} jobs is already registered")
        self._handlers[kind] = handler

    def handler(self, kind: str) -> Handler:
        return self._handlers[kind]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._handlers)


@dataclass
class JobCounts:
    """What a worker finished: jobs done, and jobs given up on."""

    done: int = 0
    failed: int = 0


class Worker:
    """Runs due jobs, ``concurrency`` at a time, retrying transient failures by ``policy``."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: HandlerRegistry,
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 8,
        stop_timeout: float = 15.0,
        name: str = "repolink-jobs",
    ) -> None:
        self._queue = queue
        self._handlers = handlers
        self._policy = policy or RetryPolicy()
        self._concurrency = max(concurrency, 1)
        self._stop_timeout = stop_timeout
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._counts = JobCounts()

    @property
    def counts(self) -> JobCounts:
        """Jobs this worker finished so far."""
        return self._counts

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start running jobs in the background of the running event loop."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, timeout: float | None = None) -> None:
        """Claim nothing more; let the attempts in flight finish within ``timeout`` (default
        ``stop_timeout``), then cancel them: a cancelled job is due again at once, so the
        next worker to start runs it."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self.wake()
        grace = self._stop_timeout if timeout is None else max(timeout, 0.0)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=grace)
        except TimeoutError:
            log.warning("%s: cancelling the jobs still running after %g s", self._name, grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    def wake(self) -> None:
        """Look for due jobs now; safe to call from any thread."""
        loop, event = self._loop, self._wake_event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def drain(self) -> JobCounts:
        """Run jobs until none is pending: every one done or failed for good."""
        while True:
            next_due = await self._run_due()
            if next_due is None:
                return self._counts
            await asyncio.sleep(_seconds_until(next_due))

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        """The server's loop: keep up to ``concurrency`` attempts running, claiming into each
        free slot as soon as one frees or the worker is woken — a job enqueued while a long
        one runs starts at once instead of waiting for the whole batch it was not part of."""
        assert self._wake_event is not None
        running: dict[asyncio.Task[None], Job] = {}
        try:
            while not self._stopping:
                self._wake_event.clear()
                try:
                    wait = await self._fill(running)
                except Exception:
                    log.exception("a pass over due jobs failed")
                    wait = ERROR_BACKOFF
                if self._stopping:
                    break
                woken = asyncio.ensure_future(self._wake_event.wait())
                try:
                    await asyncio.wait({woken, *running}, timeout=wait, return_when=FIRST)
                finally:
                    woken.cancel()
                for task in [task for task in running if task.done()]:
                    del running[task]
            # Stopping: nothing more is claimed; what runs may finish (stop() bounds the wait).
            if running:
                await asyncio.wait(set(running))
        except asyncio.CancelledError:
            # stop()'s grace ran out: the attempts still running are cancelled and their jobs
            # given back, due again at once, for the next worker to start.
            unfinished = [task for task in running if not task.done()]
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            self._release([running[task] for task in unfinished])
            raise

    async def _fill(self, running: dict[asyncio.Task[None], Job]) -> float:
        """Claim due jobs into the free slots and start them; how long to wait before looking
        again unless woken or an attempt ends."""
        kinds = self._handlers.kinds
        free = self._concurrency - len(running)
        if free <= 0:
            return POLL_INTERVAL
        batch = await asyncio.to_thread(self._queue.claim, kinds, free)
        for job in batch:
            running[asyncio.create_task(self._carry_out(job))] = job
        if len(batch) == free:  # every slot busy: the next look is when one frees
            return POLL_INTERVAL
        next_due = await asyncio.to_thread(self._queue.next_due, kinds)
        if next_due is None:
            return POLL_INTERVAL
        return min(_seconds_until(next_due), POLL_INTERVAL)

    async def _carry_out(self, job: Job) -> None:
        """One attempt, and its settling recorded. (Cancelled: the cancellation goes on up,
        nothing is recorded — the loop gives the job back.)"""
        outcome = await self._attempt(job)
        try:
            await asyncio.to_thread(self._queue.finish, [self._settle(job, outcome)])
        except Exception:  # the job stays leased; its lease running out makes it due again
            log.exception("%s job %d: cannot record its attempt", job.kind, job.id)

    async def _run_due(self) -> datetime | None:
        """Run every job due now; the time the next pending one is due, if any."""
        kinds = self._handlers.kinds
        while not self._stopping:
            batch = await asyncio.to_thread(self._queue.claim, kinds, self._concurrency)
            if not batch:
                break
            try:
                outcomes = await asyncio.gather(*(self._attempt(job) for job in batch))
            except asyncio.CancelledError:
                self._release(batch)
                raise
            settled = [
                self._settle(job, outcome) for job, outcome in zip(batch, outcomes, strict=True)
            ]
            await asyncio.to_thread(self._queue.finish, settled)
        return await asyncio.to_thread(self._queue.next_due, kinds)

    def _release(self, batch: list[Job]) -> None:
        """Give the jobs of a cancelled batch back to the queue, due now, instead of leaving
        them leased until their lease runs out. Blocking on purpose: the task is being
        cancelled, and the release must not be cancelled with it."""
        try:
            self._queue.release(batch)
        except Exception:
            log.exception("%s: cannot give %d cancelled jobs back", self._name, len(batch))
        else:
            log.info("%s: %d cancelled jobs are due again", self._name, len(batch))

    async def _attempt(self, job: Job) -> Outcome:
        try:
            return await self._handlers.handler(job.kind)(job)
        except Exception as exc:  # a handler's bug fails its job, never the worker
            log.exception("%s job %d: the handler failed", job.kind, job.id)
            return Outcome.failed(describe_error(exc))

    def _settle(self, job: Job, outcome: Outcome) -> Settled:
        subject = outcome.subject or f"{job.kind} job"
        settled = settle(job, outcome, self._policy, utcnow())
        if settled.state is State.DONE:
            self._counts.done += 1
            log.info("%s: job %d done", subject, job.id)
        elif settled.state is State.FAILED:
            self._counts.failed += 1
            log.warning(
                "%s: job %d failed after %d attempts (%s)",
                subject,
                job.id,
                job.attempt,
                outcome.error,
            )
        else:
            log.info(
                "%s: job %d attempt %d failed (%s); retrying",
                subject,
                job.id,
                job.attempt,
                outcome.error,
            )
        return settled


def describe_error(exc: BaseException) -> str:
    """An exception as one short line fit for a job's record: its type and first line."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:MAX_ERROR_LENGTH]


def _seconds_until(moment: datetime) -> float:
    return max((moment - utcnow()).total_seconds(), 0.0)
