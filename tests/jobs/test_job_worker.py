"""The worker: due jobs run by the handler of their kind, retried by the policy, against a real
SQLite store; the only stand-in is the test's own handler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from repolink.jobs import HandlerRegistry, Job, Outcome, RetryPolicy, Worker
from repolink.store import Store
from support.jobkit import ECHO, OTHER, OtherJob, Script, make_queue, row

pytestmark = pytest.mark.databases

FAST = RetryPolicy(max_attempts=3, base_delay=0.01)
WAIT = 20.0


def worker(
    store: Store, script: Script, *, policy: RetryPolicy = FAST, concurrency: int = 8
) -> Worker:
    handlers = HandlerRegistry()
    handlers.register(ECHO, script)
    return Worker(make_queue(store), handlers, policy=policy, concurrency=concurrency)


def test_drain_runs_every_job_once_and_counts_them(job_store: Store) -> None:
    queue = make_queue(job_store)
    ids = [queue.enqueue(ECHO, {"text": "o"}) for _ in range(5)]
    script = Script(job_store)
    counts = asyncio.run(worker(job_store, script, concurrency=2).drain())
    assert (counts.done, counts.failed) == (5, 0)
    assert sorted(script.attempts) == [(job_id, 1) for job_id in ids]
    assert {row(job_store, job_id).status for job_id in ids} == {"done"}
    assert row(job_store, ids[0]).result == "done at 1"


def test_transient_failures_are_retried_until_success(job_store: Store) -> None:
    job_id = make_queue(job_store).enqueue(ECHO, {"text": "tt"})
    script = Script(job_store)
    counts = asyncio.run(worker(job_store, script).drain())
    assert (counts.done, counts.failed) == (1, 0)
    assert script.attempts == [(job_id, 1), (job_id, 2), (job_id, 3)]
    done = row(job_store, job_id)
    assert (done.status, done.attempts, done.last_error, done.result) == (
        "done",
        3,
        None,
        "done at 3",
    )


def test_transient_failures_stop_at_max_attempts(job_store: Store) -> None:
    job_id = make_queue(job_store).enqueue(ECHO, {"text": "tttt"})
    counts = asyncio.run(worker(job_store, Script(job_store)).drain())
    assert (counts.done, counts.failed) == (0, 1)
    failed = row(job_store, job_id)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "try later")
    assert failed.result == "t3"  # the details of the last attempt are kept
    assert failed.next_attempt_at is None


def test_a_permanent_failure_is_never_retried(job_store: Store) -> None:
    job_id = make_queue(job_store).enqueue(ECHO, {"text": "p"})
    script = Script(job_store)
    counts = asyncio.run(worker(job_store, script).drain())
    assert (counts.done, counts.failed) == (0, 1)
    assert script.attempts == [(job_id, 1)]
    assert (row(job_store, job_id).status, row(job_store, job_id).result) == ("failed", "p")


def test_a_handler_that_raises_fails_its_attempt_not_the_worker(job_store: Store) -> None:
    broken = make_queue(job_store).enqueue(ECHO, {"text": "x"})
    fine = make_queue(job_store).enqueue(ECHO, {"text": "o"})
    counts = asyncio.run(worker(job_store, Script(job_store)).drain())
    assert (counts.done, counts.failed) == (2, 0)  # the raise was transient: tried again
    assert row(job_store, broken).attempts == 2
    assert row(job_store, fine).status == "done"


def test_the_error_of_a_raising_handler_is_one_line(job_store: Store) -> None:
    job_id = make_queue(job_store).enqueue(ECHO, {"text": "x"})
    policy = RetryPolicy(max_attempts=1)
    asyncio.run(worker(job_store, Script(job_store), policy=policy).drain())
    assert row(job_store, job_id).last_error == "RuntimeError: the handler broke"


def test_only_kinds_with_a_handler_are_claimed(job_store: Store) -> None:
    other = make_queue(job_store).enqueue(OTHER, {})
    counts = asyncio.run(worker(job_store, Script(job_store)).drain())
    assert (counts.done, counts.failed) == (0, 0)
    assert row(job_store, other, OtherJob).attempts == 0


def test_one_kind_has_one_handler() -> None:
    handlers = HandlerRegistry()

    async def handler(job: Job) -> Outcome:
        return Outcome.done()

    handlers.register(ECHO, handler)
    with pytest.raises(ValueError, match="already registered"):
        handlers.register(ECHO, handler)
    handlers.register(OTHER, handler)
    assert handlers.kinds == (ECHO, OTHER)


def test_two_workers_never_run_one_attempt_twice(job_store: Store) -> None:
    queue = make_queue(job_store)
    ids = [queue.enqueue(ECHO, {"text": "o"}) for _ in range(20)]
    script = Script(job_store)  # shared: it records both workers' attempts

    async def both() -> None:
        await asyncio.gather(
            worker(job_store, script, concurrency=3).drain(),
            worker(job_store, script, concurrency=2).drain(),
        )

    asyncio.run(both())
    assert sorted(script.attempts) == [(job_id, 1) for job_id in ids]


def test_a_started_worker_runs_what_is_enqueued_when_woken(job_store: Store) -> None:
    script = Script(job_store)
    queue = make_queue(job_store)
    waiting = queue.enqueue(ECHO, {"text": "o"})  # before the start: picked up on start

    async def scenario() -> int:
        running = worker(job_store, script)
        await running.start()
        try:
            await until(lambda: row(job_store, waiting).status == "done")
            woken = await asyncio.to_thread(queue.enqueue, ECHO, {"text": "o"})
            running.wake()
            await until(lambda: row(job_store, woken).status == "done")
            return woken
        finally:
            await running.stop()

    woken = asyncio.run(scenario())
    assert sorted(script.attempts) == [(waiting, 1), (woken, 1)]


def test_stop_without_start_and_twice_is_harmless(job_store: Store) -> None:
    async def scenario() -> None:
        idle = worker(job_store, Script(job_store))
        await idle.stop()
        await idle.start()
        await idle.stop()
        await idle.stop()

    asyncio.run(scenario())


class Held:
    """A handler whose attempts run until the test lets them go (or they are cancelled)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = 0

    async def __call__(self, job: Job) -> Outcome:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return Outcome.done(details={"result": "finished in the grace"})


def held_worker(store: Store, handler: Held) -> Worker:
    handlers = HandlerRegistry()
    handlers.register(ECHO, handler)
    return Worker(make_queue(store), handlers, policy=FAST, stop_timeout=WAIT)


def test_stop_lets_a_running_job_finish_within_the_grace(job_store: Store) -> None:
    job_id = make_queue(job_store).enqueue(ECHO, {"text": "o"})
    held = Held()

    async def scenario() -> None:
        running = held_worker(job_store, held)
        await running.start()
        await asyncio.wait_for(held.started.wait(), WAIT)
        stopping = asyncio.create_task(running.stop(WAIT))
        await asyncio.sleep(0)  # the stop has begun: nothing new is claimed from here on
        held.release.set()
        await asyncio.wait_for(stopping, WAIT)

    asyncio.run(scenario())
    finished = row(job_store, job_id)
    assert (finished.status, finished.result, held.cancelled) == (
        "done",
        "finished in the grace",
        0,
    )


def test_a_job_cancelled_at_stop_is_due_again_at_once(job_store: Store) -> None:
    queue = make_queue(job_store)
    job_id = queue.enqueue(ECHO, {"text": "o"})
    held = Held()

    async def scenario() -> None:
        running = held_worker(job_store, held)
        await running.start()
        await asyncio.wait_for(held.started.wait(), WAIT)
        await running.stop(0)  # no grace: the attempt is cancelled

    asyncio.run(scenario())
    assert held.cancelled == 1
    cancelled = row(job_store, job_id)
    assert cancelled.status == "pending"
    assert cancelled.attempts == 0  # the cancelled attempt does not count against retries
    # Not held by the dead worker's lease: the next worker claims it at once.
    assert [job.id for job in queue.claim([ECHO], 10)] == [job_id]


class FirstHeld(Held):
    """Holds the first job it is given until released; every later one is done at once."""

    def __init__(self) -> None:
        super().__init__()
        self.first: int | None = None

    async def __call__(self, job: Job) -> Outcome:
        if self.first is None or self.first == job.id:
            self.first = job.id
            return await super().__call__(job)
        return Outcome.done(details={"result": "not held"})


def test_a_job_enqueued_while_another_runs_does_not_wait_for_it(job_store: Store) -> None:
    """A free slot is filled when the worker is woken, not when the running attempts end."""
    queue = make_queue(job_store)
    held = FirstHeld()

    async def scenario() -> tuple[int, int, str]:
        running = held_worker(job_store, held)
        await running.start()
        try:
            long = await asyncio.to_thread(queue.enqueue, ECHO, {"text": "o"})
            await asyncio.wait_for(held.started.wait(), WAIT)
            short = await asyncio.to_thread(queue.enqueue, ECHO, {"text": "o"})
            running.wake()
            await until(lambda: row(job_store, short).status == "done")
            long_while_short_done = row(job_store, long).status
            held.release.set()
            await until(lambda: row(job_store, long).status == "done")
            return long, short, long_while_short_done
        finally:
            await running.stop()

    long, short, long_status = asyncio.run(scenario())
    assert long_status != "done"
    assert held.first == long and row(job_store, short).result == "not held"


async def until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        await asyncio.sleep(0.02)
