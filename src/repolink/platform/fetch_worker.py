"""The fetch worker of a server: carries out queued fetch runs in its background.

On SQLite it runs :class:`repolink.jobs.Worker` over the fetch queue in this process, and the
polling pass. On PostgreSQL the runs are procrastinate's jobs
(:mod:`repolink.platform.fetch_dispatch`): it holds the process's procrastinate worker
(``jobs_worker``) running instead, and polling is a periodic task there. Either way it queues
the fetches of a push to the server's own built-in host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from repolink.jobs import HandlerRegistry, JobCounts, Worker
from repolink.platform.fetch_jobs import DEFAULT_FETCH_CONCURRENCY, STOP_TIMEOUT, FetchJobHandler
from repolink.platform.fetch_queue import FETCH_CONNECTION
from repolink.platform.hosted_pushes import ServerAddress

if TYPE_CHECKING:
    from repolink.platform.fetch_requests import FetchRequestService

log = logging.getLogger(__name__)

# How often a worker looks for connections whose poll is due (their intervals are minutes).
POLL_PASS_SECONDS = 30.0


class JobsRunner(Protocol):
    """A process's procrastinate worker, shared by the parts that need it running."""

    async def start(self) -> None: ...

    async def stop(self, grace: float | None = None) -> None: ...


class PushedRepository(Protocol):
    """What a push report says of its repository (a :class:`repolink.host.info.RepositoryInfo`)."""

    @property
    def full_name(self) -> str: ...


class FetchWorker:
    """Carries out queued fetch runs in the background of a server.

    ``await start()``, ``await stop(grace)`` at shutdown (the runs still going after ``grace``
    seconds are cancelled: their git is stopped and they wait again, for the next start);
    ``await on_push(repository, updates)`` after a push to this server's built-in host;
    ``await drain()`` in a one-shot process. The worker is woken whenever this process
    enqueues or finishes a run: a request gets its fetch at once, and a connection's waiting
    run starts as soon as its running one ends.
    """

    def __init__(
        self,
        requests: FetchRequestService,
        *,
        concurrency: int = DEFAULT_FETCH_CONCURRENCY,
        server: ServerAddress | None = None,
        stop_timeout: float = STOP_TIMEOUT,
        poll_every: float = POLL_PASS_SECONDS,
        jobs_worker: JobsRunner | None = None,
        run_jobs: bool = True,
    ) -> None:
        """``run_jobs`` false (a server whose jobs run elsewhere): :meth:`start` starts nothing;
        :meth:`on_push` still queues the fetches of a push."""
        self._requests = requests
        self._jobs_worker = jobs_worker
        self._run_jobs = run_jobs
        self._poll_every = poll_every
        self._poller: asyncio.Task[None] | None = None
        self._queue = requests.queue
        self._server = server
        self.handler = FetchJobHandler(requests.store, requests.fetches, self._queue)
        handlers = HandlerRegistry()
        handlers.register(FETCH_CONNECTION, self.handler)
        self._worker = Worker(
            self._queue,
            handlers,
            policy=requests.policy,
            concurrency=concurrency,
            stop_timeout=stop_timeout,
            name="repolink-fetches",
        )

    async def start(self) -> None:
        if not self._run_jobs:
            return
        self._requests.fetches.keep_connections_warm()
        if self._jobs_worker is not None:
            await self._jobs_worker.start()
        else:
            await self._worker.start()
            self._queue.add_listener(self._worker.wake)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="repolink-fetch-polling")

    async def stop(self, grace: float | None = None) -> None:
        """Claim nothing more; let the fetches in flight finish within ``grace`` seconds (by
        default the worker's stop timeout), then cancel them (:class:`FetchJobHandler`): their
        git is stopped, the mirror left consistent, and the runs wait again for the next
        start."""
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        self._queue.remove_listener(self._worker.wake)
        await self._worker.stop(grace)
        if self._jobs_worker is not None:
            await self._jobs_worker.stop(grace)

    async def _poll(self) -> None:
        """The periodic pass: request the fetches of the connections whose poll is due, and
        close the warm SSH connections beyond the ones a server keeps."""
        while True:
            try:
                # With procrastinate, polling is its periodic task (fetch_dispatch).
                dispatched = self._queue.waker is not None
                runs = [] if dispatched else await asyncio.to_thread(self._requests.poll_due)
                await asyncio.to_thread(self._requests.fetches.close_least_used_connections)
            except Exception:
                log.exception("a polling pass failed")
            else:
                if runs:
                    log.info("polling: fetch runs %s", ", ".join(str(run.id) for run in runs))
            await asyncio.sleep(self._poll_every)

    def wake(self) -> None:
        self._worker.wake()

    async def on_push(self, repository: PushedRepository, updates: Sequence[object], /) -> None:
        """Queue the fetches of the projects connected to ``repository`` on this server;
        never raises (the push has succeeded already)."""
        if self._server is None or not updates:
            return
        try:
            runs = await asyncio.to_thread(
                self._requests.request_for_hosted_push, repository.full_name, self._server
            )
        except Exception:
            log.exception("cannot queue the fetches of a push to %s", repository.full_name)
            return
        if runs:
            log.info(
                "push to %s: fetch runs %s queued",
                repository.full_name,
                ", ".join(str(run.id) for run in runs),
            )

    async def drain(self) -> JobCounts:
        return await self._worker.drain()

    @property
    def counts(self) -> JobCounts:
        return self._worker.counts
