"""The jobs backend on PostgreSQL: procrastinate's real workers on a real database — a job
deferred runs; a transient failure is retried with backoff, a permanent one is not; a worker
killed with SIGKILL mid-job leaves it to another worker, which finishes it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from repolink.jobs import Job, RetryPolicy
from repolink.jobs.procrastinate_backend import (
    SWEEP_CRON,
    SWEEP_GRACE,
    ProcrastinateJobs,
    TableDispatch,
    conninfo,
    is_postgresql,
)
from repolink.jobs.table import TableQueue
from repolink.settings import Settings
from repolink.store import Store, utcnow
from support.jobkit import ECHO, EchoJob, ScratchBase, Script, echo_table, row
from support.procrastinatekit import jobs_of, running_worker, wait_until

TESTS = Path(__file__).resolve().parents[1]
QUICK = RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0)


@pytest.fixture
def pg_store(tmp_path: Path, postgres_url: str) -> Iterator[Store]:
    with Store.open(Settings(data_dir=tmp_path / "data", database_url=postgres_url)) as store:
        ScratchBase.metadata.create_all(store.engine)
        yield store


def _backend(url: str, **options: Any) -> ProcrastinateJobs:
    return ProcrastinateJobs(url, **options)


def _handler(
    script: Callable[[Job], Any],
) -> Callable[[], contextlib.AbstractAsyncContextManager[Callable[[Job], Any]]]:
    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[Callable[[Job], Any]]:
        yield script

    return opened


def _add(store: Store, text: str) -> int:
    with store.session() as session:
        job = echo_table().new_job(utcnow(), text=text)
        session.add(job)
        session.flush()
        job_id: int = job.id
        return job_id


def test_the_url_of_the_store_is_the_queues(postgres_url: str) -> None:
    assert is_postgresql(postgres_url)
    assert not is_postgresql("sqlite:////tmp/x.db")
    assert conninfo(postgres_url).startswith("postgresql://")


def test_a_deferred_job_runs_on_a_worker(pg_store: Store, postgres_url: str) -> None:
    jobs = _backend(postgres_url)
    script = Script(pg_store)
    dispatch = TableDispatch(jobs, TableQueue(pg_store, [echo_table()]), ECHO, _handler(script))
    job_id = _add(pg_store, "o")
    try:
        dispatch.wake([job_id])

        async def run() -> None:
            async with running_worker(jobs):
                await wait_until(lambda: row(pg_store, job_id).status == "done", what="the job")

        asyncio.run(run())
    finally:
        jobs.close()
    assert script.attempts == [(job_id, 1)]
    assert row(pg_store, job_id).result == "done at 1"
    assert [job["status"] for job in jobs_of(postgres_url, ECHO)] == []  # succeeded: deleted


def test_a_transient_failure_is_retried_and_a_permanent_one_is_not(
    pg_store: Store, postgres_url: str
) -> None:
    jobs = _backend(postgres_url)
    script = Script(pg_store)
    queue = TableQueue(pg_store, [echo_table()])
    dispatch = TableDispatch(jobs, queue, ECHO, _handler(script), policy=QUICK)
    flaky, broken = _add(pg_store, "tt"), _add(pg_store, "p")
    try:
        dispatch.wake([flaky, broken])

        async def run() -> None:
            async with running_worker(jobs):
                await wait_until(
                    lambda: (
                        row(pg_store, flaky).status == "done"
                        and row(pg_store, broken).status == "failed"
                    ),
                    what="both jobs to end",
                )

        asyncio.run(run())
    finally:
        jobs.close()
    assert sorted(script.attempts) == [(flaky, 1), (flaky, 2), (flaky, 3), (broken, 1)]
    assert (row(pg_store, flaky).attempts, row(pg_store, flaky).result) == (3, "done at 3")
    assert (row(pg_store, broken).attempts, row(pg_store, broken).last_error) == (1, "never")
    assert jobs_of(postgres_url, ECHO) == []  # nothing left to run


def test_a_job_whose_wake_up_was_lost_is_woken_by_the_sweep_once(
    pg_store: Store, postgres_url: str
) -> None:
    """A row committed by a process killed before it deferred the wake-up: nothing would ever
    run it but the sweep, which wakes only jobs overdue by ``SWEEP_GRACE`` and, however often
    it runs, leaves one wake-up waiting per job."""
    jobs = _backend(postgres_url)
    script = Script(pg_store)
    dispatch = TableDispatch(jobs, TableQueue(pg_store, [echo_table()]), ECHO, _handler(script))
    lost, fresh = _add(pg_store, "o"), _add(pg_store, "o")
    with pg_store.session() as session:  # enqueued a while ago; ``fresh`` just now
        session.get(EchoJob, lost).next_attempt_at = utcnow() - SWEEP_GRACE - timedelta(seconds=1)
    try:
        periodic = jobs.app.periodic_registry.periodic_tasks
        assert periodic[(f"{ECHO}_sweep", f"{ECHO}_sweep")].cron == SWEEP_CRON
        assert asyncio.run(dispatch.sweep()) == [lost]
        assert asyncio.run(dispatch.sweep()) == [lost]  # not run yet: woken again, joined
        [waiting] = jobs_of(postgres_url, ECHO)
        assert (waiting["status"], waiting["args"], waiting["queueing_lock"]) == (
            "todo",
            {"job_id": lost},
            f"{ECHO}:{lost}",
        )

        async def run() -> None:
            async with running_worker(jobs):
                await wait_until(lambda: row(pg_store, lost).status == "done", what="the job")

        asyncio.run(run())
    finally:
        jobs.close()
    assert script.attempts == [(lost, 1)]
    assert row(pg_store, fresh).status == "pending"  # due, not overdue: its wake-up may come


_DOOMED_WORKER = """
import asyncio, sys, time
from pathlib import Path
from datetime import timedelta
from repolink.jobs import Outcome
from repolink.jobs.procrastinate_backend import ProcrastinateJobs, TableDispatch
from repolink.jobs.table import TableQueue
from repolink.settings import Settings
from repolink.store import Store, utcnow
from support.jobkit import ECHO, echo_table
import contextlib

url, data_dir, marker = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = Store.open(Settings(data_dir=data_dir, database_url=url))
jobs = ProcrastinateJobs(url, heartbeat_interval=0.5, stalled_after=2.0,
                         stalled_check_cron="* * * * * *")

async def hang(job):
    marker.write_text(str(job.attempt))
    await asyncio.sleep(3600)
    return Outcome.done()

@contextlib.asynccontextmanager
async def opened():
    yield hang

TableDispatch(jobs, TableQueue(store, [echo_table()], lease=timedelta(seconds=2)), ECHO, opened)
asyncio.run(jobs.run_worker(concurrency=1, name="doomed"))
"""


def test_a_job_of_a_worker_killed_mid_job_is_finished_by_another(
    pg_store: Store, postgres_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    doomed = subprocess.Popen(
        [sys.executable, "-c", _DOOMED_WORKER, postgres_url, str(tmp_path / "d"), str(marker)],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    jobs = _backend(
        postgres_url, heartbeat_interval=0.5, stalled_after=2.0, stalled_check_cron="* * * * * *"
    )
    script = Script(pg_store)
    queue = TableQueue(pg_store, [echo_table()], lease=timedelta(seconds=2))
    dispatch = TableDispatch(jobs, queue, ECHO, _handler(script))
    job_id = _add(pg_store, "o")
    try:
        dispatch.wake([job_id])

        async def run() -> None:
            await wait_until(marker.exists, what="the doomed worker to start the job")
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=30)
            async with running_worker(jobs):
                await wait_until(lambda: row(pg_store, job_id).status == "done", what="the job")

        asyncio.run(run())
    finally:
        jobs.close()
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
    assert marker.read_text() == "1"
    assert script.attempts == [(job_id, 2)]  # the dead worker's attempt counted
    assert row(pg_store, job_id).result == "done at 2"


_PROBE = "repolink_polling_probe"


def test_an_idle_worker_finds_a_wake_up_brought_forward_by_polling_every_half_second(
    postgres_url: str,
) -> None:
    """A wake-up scheduled for later (a webhook's gathering window) and then made due sends
    no NOTIFY when it falls due — here a second deferral joins the waiting one and brings it
    forward, an UPDATE, which procrastinate's insert trigger does not see — so an idle worker
    finds it only by polling. That it does is shown by the run, with a real worker on a real
    database, each step awaited rather than timed.

    How soon is the polling interval the worker was started with: timing the run would be a
    wall-clock assertion on a noisy machine, and the worker's own setting is exact. It must
    stay at most a second (a webhook's gathering window); procrastinate's default of 5 s
    fails here."""
    jobs = _backend(postgres_url)
    ran: list[str] = []

    async def probe(name: str) -> None:
        ran.append(name)

    jobs.task(_PROBE, probe, queue="polling-probe")
    options: dict[str, Any] = {}
    fetched: list[int | None] = []
    start_worker = jobs.app.run_worker_async
    fetch_job = jobs.app.job_manager.fetch_job

    async def recorded_start(**given: Any) -> None:
        options.update(given)
        await start_worker(**given)

    async def recorded_fetch(**given: Any) -> Any:
        job = await fetch_job(**given)
        fetched.append(None if job is None else job.id)
        return job

    jobs.app.run_worker_async = recorded_start  # type: ignore[method-assign]
    jobs.app.job_manager.fetch_job = recorded_fetch  # type: ignore[method-assign]
    later = utcnow() + timedelta(hours=1)
    try:
        waiting = jobs.defer(_PROBE, {"name": "gathered"}, queueing_lock="probe", at=later)

        async def run() -> None:
            # Of the probe's queue alone: the periodic tasks' jobs would wake it by NOTIFY.
            async with running_worker(jobs, queues=["polling-probe"]):
                await wait_until(lambda: None in fetched, what="the worker's first look")
                # Joins the waiting wake-up and makes it due now: no insert, no NOTIFY.
                assert jobs.defer(_PROBE, {"name": "joined"}, queueing_lock="probe") is None
                await wait_until(lambda: bool(ran), what="the wake-up to run")

        asyncio.run(run())
    finally:
        jobs.close()
    assert ran == ["gathered"]
    assert waiting is not None
    found = fetched.index(waiting)  # a poll found it, after looks that found nothing
    assert found > 0 and set(fetched[:found]) == {None}
    assert options["queues"] == ["polling-probe"]
    assert options["fetch_job_polling_interval"] <= 1.0
