"""Fetches on procrastinate (PostgreSQL), against the real embedded host and real workers:
a requested fetch runs on a worker; while one runs, a second request makes the one waiting
run (one procrastinate job waiting under the connection's queueing lock, held back by its
lock) and a third joins it; a transient failure waits for its retry, a permanent one does not;
polling is a periodic task; a worker killed (SIGKILL) mid-fetch leaves the fetch to another
worker process, which finishes it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import timedelta

from repolink.platform.fetch_dispatch import fetch_lock
from repolink.platform.fetch_queue import FETCH_CONNECTION
from repolink.store import utcnow
from repolink.store.models.fetch_runs import FetchRun
from repolink.store.models.platform import RepositoryConnection
from support.platformkit import CountingProxy, HostedRepos, Platform, granted_key
from support.procrastinatekit import jobs_of, wait_until

BIG_FILE_BYTES = 3 << 20


def _fetch_jobs(platform: Platform) -> list[dict[str, object]]:
    return jobs_of(platform.settings.resolved_database_url, FETCH_CONNECTION)


def test_a_requested_fetch_runs_on_a_worker(pg_platform: Platform, hosted: HostedRepos) -> None:
    assert pg_platform.connect("alpha", hosted.app.url(), grant_on="app").ok
    sha = hosted.app.commit_file("alpha.txt")
    service = pg_platform.app.fetch_requests

    run = service.request("alpha", trigger="api")
    assert run.state == "queued"
    [job] = _fetch_jobs(pg_platform)
    connection_id = pg_platform.app.connections.connection_info("alpha").id
    assert (job["status"], job["lock"], job["queueing_lock"]) == (
        "todo",
        fetch_lock(connection_id),
        fetch_lock(connection_id),
    )

    async def work() -> None:
        worker = pg_platform.app.fetch_worker()
        await worker.start()
        try:
            await wait_until(lambda: service.get_run(run.id).finished, what="the fetch")
        finally:
            await worker.stop(grace=5)

    asyncio.run(work())
    done = service.get_run(run.id)
    assert (done.state, done.attempts, done.new_commits) == ("done", 1, 1)
    assert sha in {commit.sha for commit in pg_platform.app.commits.list_commits("alpha").commits}


def test_one_runs_one_waits_and_a_third_request_joins_the_waiting_one(
    pg_platform: Platform, hosted: HostedRepos, proxy: CountingProxy
) -> None:
    pg_platform.trust_host(proxy.port)
    assert pg_platform.connect("slow", hosted.app.url(proxy.port), grant_on="app").ok
    connection_id = pg_platform.app.connections.connection_info("slow").id
    service = pg_platform.app.fetch_requests
    sha = hosted.app.commit_file("big.bin", BIG_FILE_BYTES)
    proxy.throttle = 0.02  # about 200 KB/s: the first fetch takes many seconds

    async def work() -> tuple[int, int, int, list[dict[str, object]]]:
        worker = pg_platform.app.fetch_worker(concurrency=4)
        await worker.start()
        try:
            first = await asyncio.to_thread(service.request, "slow", trigger="api")
            relayed = proxy.relayed
            await wait_until(
                lambda: proxy.relayed > relayed + 256 * 1024, what="the pack on its way"
            )
            second = await asyncio.to_thread(service.request, "slow", trigger="webhook")
            third = await asyncio.to_thread(service.request, "slow", trigger="api")
            # The first still runs: the waiting one's job is held back by the lock, though
            # the worker has free slots.
            await wait_until(
                lambda: {job["status"] for job in _fetch_jobs(pg_platform)} == {"doing", "todo"},
                what="one job running and one waiting",
            )
            jobs = _fetch_jobs(pg_platform)
            assert service.get_run(first.id).state == "running"
            assert service.get_run(second.id).state == "queued"
            proxy.throttle = None
            await wait_until(
                lambda: service.get_run(second.id).finished, what="the waiting run to finish"
            )
            return first.id, second.id, third.id, jobs
        finally:
            await worker.stop(grace=5)

    first, second, third, jobs = asyncio.run(work())
    assert third == second != first
    lock = fetch_lock(connection_id)
    assert sorted((job["status"], job["lock"], job["queueing_lock"]) for job in jobs) == [
        ("doing", lock, lock),
        ("todo", lock, lock),
    ]
    assert service.get_run(first).state == "done"
    assert service.get_run(second).state == "done"
    assert service.get_run(first).new_commits + service.get_run(second).new_commits == 1
    commits = pg_platform.app.commits.list_commits("slow").commits
    assert sha in {commit.sha for commit in commits}


def test_a_request_while_a_wake_up_waits_joins_it(
    pg_platform: Platform, hosted: HostedRepos
) -> None:
    assert pg_platform.connect("alpha", hosted.app.url(), grant_on="app").ok
    connection_id = pg_platform.app.connections.connection_info("alpha").id
    jobs = pg_platform.app.job_backend
    assert jobs is not None
    lock = fetch_lock(connection_id)
    later = utcnow() + timedelta(minutes=5)

    first = jobs.defer(
        FETCH_CONNECTION, {"connection_id": connection_id}, lock=lock, queueing_lock=lock, at=later
    )
    joined = jobs.defer(
        FETCH_CONNECTION, {"connection_id": connection_id}, lock=lock, queueing_lock=lock
    )

    assert first is not None and joined is None
    [job] = _fetch_jobs(pg_platform)
    # The join asked for now: the waiting job was brought forward.
    assert job["id"] == first
    assert job["scheduled_at"] is not None and job["scheduled_at"] <= utcnow()


def test_a_transient_failure_waits_for_its_retry_and_a_permanent_one_does_not(
    pg_platform: Platform, hosted: HostedRepos, proxy: CountingProxy
) -> None:
    pg_platform.trust_host(proxy.port)
    assert pg_platform.connect("flaky", hosted.app.url(proxy.port), grant_on="app").ok
    pg_platform.project("gone")
    key = granted_key(hosted.host, "other", "gone")
    pg_platform.app.connections.save(
        "gone", f"{hosted.app.url()[: -len('app.git')]}nothing.git", key=key
    )
    flaky_id = pg_platform.app.connections.connection_info("flaky").id
    service = pg_platform.app.fetch_requests
    proxy.close()  # the host is unreachable now: connection refused, which may pass

    async def work() -> tuple[int, int]:
        worker = pg_platform.app.fetch_worker()
        await worker.start()
        try:
            flaky = await asyncio.to_thread(service.request, "flaky", trigger="api")
            gone = await asyncio.to_thread(service.request, "gone", trigger="api")
            await wait_until(
                # (On a loaded machine the retry may come before the other's end: any attempt.)
                lambda: (
                    service.get_run(flaky.id).error_code is not None
                    and service.get_run(gone.id).finished
                ),
                what="both first attempts",
            )
            return flaky.id, gone.id
        finally:
            await worker.stop(grace=5)

    flaky_run, gone_run = asyncio.run(work())
    flaky = service.get_run(flaky_run)
    gone = service.get_run(gone_run)
    assert (flaky.state, flaky.error_code) == ("queued", "connection_refused")
    assert gone.state == "failed" and gone.attempts == 1, gone
    # The retry is procrastinate's job, due after the backoff.
    [retry] = [job for job in _fetch_jobs(pg_platform) if job["lock"] == fetch_lock(flaky_id)]
    assert (retry["status"], retry["queueing_lock"]) == ("todo", fetch_lock(flaky_id))
    with pg_platform.store.session() as session:
        row = session.get(FetchRun, flaky_run)
        assert row is not None and row.next_attempt_at is not None
        # A wake-up waits, due by the time the run is (an earlier one, deferred by the sweep
        # while the attempt ran, finds the run not due yet and wakes it again then).
        assert retry["scheduled_at"] <= row.next_attempt_at
        assert row.next_attempt_at - row.updated_at >= timedelta(seconds=9)  # the backoff


def test_polling_is_a_periodic_task_of_the_workers(
    pg_platform: Platform, hosted: HostedRepos
) -> None:
    assert pg_platform.connect("alpha", hosted.app.url(), grant_on="app").ok
    service = pg_platform.app.fetch_requests
    service.set_polling("alpha", 1)
    with pg_platform.store.session() as session:
        for connection in session.query(RepositoryConnection):
            connection.next_poll_at = utcnow() - timedelta(seconds=1)
    jobs = pg_platform.app.job_backend
    assert jobs is not None and pg_platform.app.fetch_dispatch is not None

    async def work() -> None:
        worker = pg_platform.app.fetch_worker()
        await worker.start()
        try:
            await wait_until(
                lambda: any(
                    run.trigger == "poll" and run.finished for run in service.history("alpha")
                ),
                what="a polled fetch",
            )
        finally:
            await worker.stop(grace=5)

    asyncio.run(work())
    # The server's own polling pass does not poll on PostgreSQL: this was the periodic task.
    assert pg_platform.app.fetch_requests.queue.waker is not None


_WORKER = """
import asyncio, sys
from datetime import timedelta
from repolink.app import Repolink
from repolink.jobs.procrastinate_backend import ProcrastinateJobs
from repolink.platform.fetch_queue import FetchQueue
from repolink.platform.fetch_requests import FetchRequestService
from repolink.settings import Settings

url, data_dir = sys.argv[1:3]
app = Repolink(Settings(data_dir=data_dir, database_url=url, git_timeout=120))
# Quick to give up on the dead: heartbeats twice a second, dead after 2 s, a fetch run's
# lease of 3 s (renewed every second while it runs).
app.__dict__["job_backend"] = ProcrastinateJobs(
    url, heartbeat_interval=0.5, stalled_after=2.0, stalled_check_cron="* * * * * *"
)
queue = FetchQueue(app.store, lease=timedelta(seconds=3), waker=app.fetch_dispatch)
app.__dict__["fetch_requests"] = FetchRequestService(app.store, app.fetches, queue=queue)


async def main() -> None:
    await app.fetch_worker(concurrency=2).start()
    await asyncio.Event().wait()


asyncio.run(main())
"""


def _start_worker(platform: Platform) -> subprocess.Popen[bytes]:
    settings = platform.settings
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, settings.resolved_database_url, str(settings.data_dir)],
        stdin=subprocess.DEVNULL,
    )


def test_a_fetch_of_a_worker_killed_mid_fetch_is_finished_by_another(
    pg_platform: Platform, hosted: HostedRepos, proxy: CountingProxy
) -> None:
    pg_platform.trust_host(proxy.port)
    assert pg_platform.connect("slow", hosted.app.url(proxy.port), grant_on="app").ok
    service = pg_platform.app.fetch_requests
    sha = hosted.app.commit_file("big.bin", BIG_FILE_BYTES)
    proxy.throttle = 0.02
    run = service.request("slow", trigger="api")
    doomed = _start_worker(pg_platform)
    survivor: subprocess.Popen[bytes] | None = None
    try:
        relayed = proxy.relayed

        async def transferring() -> None:
            await wait_until(
                lambda: proxy.relayed > relayed + 256 * 1024, what="the pack on its way"
            )

        asyncio.run(transferring())
        assert service.get_run(run.id).state == "running"
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=30)
        proxy.throttle = None
        survivor = _start_worker(pg_platform)

        async def finished() -> None:
            await wait_until(lambda: service.get_run(run.id).finished, what="the fetch")

        asyncio.run(finished())
    finally:
        for process in (doomed, survivor):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    done = service.get_run(run.id)
    # The dead worker's attempt counted; a git it left behind may still hold the mirror for
    # a moment, failing one more attempt transiently (retried).
    assert done.state == "done" and done.attempts >= 2, done
    commits = pg_platform.app.commits.list_commits("slow").commits
    assert sha in {commit.sha for commit in commits}
    assert len({commit.sha for commit in commits}) == len(commits)
