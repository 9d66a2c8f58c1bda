"""Affinity of fetches on procrastinate (PostgreSQL), :mod:`repolink.platform.fetch_dispatch`:
a connection's wake-up goes to the own queue of the worker that last fetched it while that
worker is connected, else to the shared queue; the queueing lock still collapses requests across
queues; a wake-up that waits too long in a worker's queue is moved to the shared one. With two
real worker processes, each with a data directory (and mirrors) of its own: the worker that
fetched a connection fetches it again, round after round, and the other never clones it; with
that worker frozen (SIGSTOP) the wake-up sent to it is moved back and the other fetches, and
with it killed (SIGKILL) the other gets the connection's fetches directly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg

from repolink.git.mirrors import mirror_path
from repolink.jobs.identity import worker_id
from repolink.jobs.procrastinate_backend import ProcrastinateJobs, conninfo
from repolink.platform.fetch_dispatch import FETCH_QUEUE, worker_queue
from repolink.platform.fetch_queue import FETCH_CONNECTION
from repolink.settings import Settings
from repolink.store.models.platform import RepositoryConnection
from support.platformkit import HostedRepos, Platform
from support.procrastinatekit import job_table, wait_until


def _fetched_by(platform: Platform, connection_id: str) -> str | None:
    with platform.store.session() as session:
        connection = session.get(RepositoryConnection, connection_id)
        assert connection is not None
        return connection.fetched_by


def _waiting(platform: Platform) -> list[tuple[str, str]]:
    """(queue, status) of the connection wake-ups procrastinate holds."""
    return [
        (job["queue_name"], job["status"])
        for job in _jobs_with_queue(platform.settings.resolved_database_url)
    ]


def _jobs_with_queue(database_url: str) -> list[dict[str, object]]:
    with job_table(database_url) as connection:
        rows = connection.execute(
            "SELECT queue_name, status::text FROM procrastinate_jobs WHERE task_name = %s"
            " ORDER BY id",
            (FETCH_CONNECTION,),
        ).fetchall()
    return [{"queue_name": queue, "status": status} for queue, status in rows]


@contextlib.contextmanager
def _connected_as(database_url: str, name: str) -> Iterator[None]:
    """A database connection named as a worker's: that worker seems to run, though it takes
    no job — a worker that hangs or is busy elsewhere, as the dispatch sees it."""
    with psycopg.connect(conninfo(database_url), autocommit=True, application_name=name):
        yield


def test_a_wake_up_goes_to_the_live_worker_that_fetched_last_and_keeps_one_waiting(
    pg_platform: Platform, hosted: HostedRepos
) -> None:
    assert pg_platform.connect("alpha", hosted.app.url(), grant_on="app").ok
    assert pg_platform.connect("beta", hosted.other.url(), grant_on="other").ok
    app = pg_platform.app
    connection_id = app.connections.connection_info("alpha").id
    beta_id = app.connections.connection_info("beta").id
    dispatch, jobs = app.fetch_dispatch, app.job_backend
    assert dispatch is not None and jobs is not None
    url = pg_platform.settings.resolved_database_url
    with pg_platform.store.session() as session:
        for connection in session.query(RepositoryConnection):
            connection.fetched_by = "feed01"
    elsewhere = worker_queue("feed01")

    with _connected_as(url, elsewhere):
        assert dispatch.queue_for(beta_id) == elsewhere
        first = app.fetch_requests.request("alpha", trigger="api")
        assert _waiting(pg_platform) == [(elsewhere, "todo")]
        # A due wake-up waits there untaken: its worker is busy, so beta's goes to any.
        assert dispatch.queue_for(beta_id) == FETCH_QUEUE
    asyncio.run(wait_until(lambda: not jobs.listening(elsewhere), what="the worker gone"))
    # Its worker gone, the connection's wake-ups go to the shared queue — and one waits
    # already, in the worker's queue: the queueing lock is one across queues.
    assert dispatch.queue_for(connection_id) == FETCH_QUEUE
    second = app.fetch_requests.request("alpha", trigger="webhook")
    assert second.id == first.id
    assert _waiting(pg_platform) == [(elsewhere, "todo")]

    # Due just now: not moved yet; due longer than the bound: moved to the shared queue.
    asyncio.run(dispatch.rehome())
    assert _waiting(pg_platform) == [(elsewhere, "todo")]
    with job_table(url) as connection:
        connection.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() - interval '1 minute'"
        )
    asyncio.run(dispatch.rehome())
    assert _waiting(pg_platform) == [(FETCH_QUEUE, "todo")]

    async def work() -> None:
        worker = app.fetch_worker()
        await worker.start()
        try:
            await wait_until(
                lambda: app.fetch_requests.get_run(first.id).finished, what="the fetch"
            )
            # The worker listens on its own queue too, under its own name.
            assert await asyncio.to_thread(jobs.listening, worker_queue(app.worker_id))
        finally:
            await worker.stop(grace=5)

    asyncio.run(work())
    assert app.fetch_requests.get_run(first.id).state == "done"
    assert _fetched_by(pg_platform, connection_id) == app.worker_id
    assert app.worker_id == worker_id(pg_platform.settings.resolved_data_dir)


_WORKER = """
import asyncio, logging, sys
from repolink.app import Repolink
from repolink.jobs.procrastinate_backend import ProcrastinateJobs
from repolink.platform.fetch_dispatch import FetchDispatch
from repolink.settings import Settings

url, data_dir, key_file = sys.argv[1:4]
logging.basicConfig(
    level=logging.INFO,
    filename=f"{data_dir}.log",
    format="%(asctime)s %(name)s %(levelname)s %(message)s",
)
app = Repolink(
    Settings(data_dir=data_dir, database_url=url, secret_key_file=key_file, git_timeout=120)
)
# Quick to give up on a worker: dead after 2 s without a heartbeat; a wake-up waiting in a
# worker's queue is looked at every second (moved once due for the default 5 s: a shorter
# bound would move wake-ups of a worker merely slowed down by a loaded machine).
app.__dict__["job_backend"] = ProcrastinateJobs(
    url, heartbeat_interval=0.5, stalled_after=2.0, stalled_check_cron="* * * * * *"
)
app.__dict__["fetch_dispatch"] = FetchDispatch(
    app.job_backend,
    lambda: app.fetch_requests,
    worker=lambda: app.worker_id,
    rehome_cron="* * * * * *",
)


async def main() -> None:
    await app.fetch_worker(concurrency=2).start()
    await asyncio.Event().wait()


asyncio.run(main())
"""


def _logs(root: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()[-8000:]}" for log in root.glob("*.log"))


def _start_worker(settings: Settings, data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WORKER,
            settings.resolved_database_url,
            str(data_dir),
            str(settings.resolved_secret_key_file),
        ],
        stdin=subprocess.DEVNULL,
    )


def test_a_connection_stays_with_its_worker_until_that_worker_stops_taking_it(
    pg_platform: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    assert pg_platform.connect("alpha", hosted.app.url(), grant_on="app").ok
    app = pg_platform.app
    jobs = app.job_backend
    assert isinstance(jobs, ProcrastinateJobs)
    connection_id = app.connections.connection_info("alpha").id
    service = app.fetch_requests
    data_dirs = {}
    for name in ("a", "b"):
        data_dir = tmp_path / name
        data_dirs[worker_id(data_dir)] = data_dir  # the id its process will read
    processes = {worker: _start_worker(pg_platform.settings, d) for worker, d in data_dirs.items()}

    def mirror_in(worker: str) -> bool:
        settings = Settings(data_dir=data_dirs[worker])
        return mirror_path(settings, connection_id).exists()

    def fetch() -> None:
        sha = hosted.app.commit_file(f"round-{os.urandom(4).hex()}.txt")
        run = service.request("alpha", trigger="api")
        asyncio.run(wait_until(lambda: service.get_run(run.id).finished, what="the fetch"))
        # Its wake-up's job ended too: a worker stopped in the job's last moments would leave
        # it to the stalled-job retry, which may hand the connection's next run to any worker.
        asyncio.run(wait_until(lambda: _waiting(pg_platform) == [], what="the job's end"))
        done = service.get_run(run.id)
        assert (done.state, done.new_commits) == ("done", 1), done
        assert sha in {commit.sha for commit in app.commits.list_commits("alpha").commits}

    try:
        asyncio.run(
            wait_until(
                lambda: all(jobs.listening(worker_queue(worker)) for worker in processes),
                what="both workers running",
            )
        )
        fetch()  # nobody fetched it yet: whichever worker takes it from the shared queue
        first = _fetched_by(pg_platform, connection_id)
        assert first in processes
        [other] = set(processes) - {first}
        # Restarted on its data directory, it is the same worker; its connections are now the
        # younger ones, which PostgreSQL wakes last: without affinity the other would win the
        # shared queue's wake-ups.
        processes[first].terminate()
        processes[first].wait(timeout=60)
        processes[first] = _start_worker(pg_platform.settings, data_dirs[first])
        asyncio.run(
            wait_until(lambda: jobs.listening(worker_queue(first)), what="the worker back")
        )
        for _ in range(4):
            fetch()
            assert _fetched_by(pg_platform, connection_id) == first, _logs(tmp_path)
        assert mirror_in(first) and not mirror_in(other)

        # Frozen, its worker still seems to run (its connections stay open): the wake-up goes
        # to its queue, waits there past the bound, and is moved back for the other (frozen
        # too meanwhile, so that the wake-up is seen where it was sent).
        for worker in (first, other):
            processes[worker].send_signal(signal.SIGSTOP)
        hosted.app.commit_file("while-frozen.txt")
        run = service.request("alpha", trigger="api")
        assert _waiting(pg_platform) == [(worker_queue(first), "todo")]
        processes[other].send_signal(signal.SIGCONT)
        asyncio.run(wait_until(lambda: service.get_run(run.id).finished, what="the move back"))
        assert service.get_run(run.id).state == "done"
        assert _fetched_by(pg_platform, connection_id) == other
        assert mirror_in(other)

        # Killed, it is gone at once; the connection now stays with the other.
        processes[first].send_signal(signal.SIGKILL)
        processes[first].wait(timeout=30)
        asyncio.run(
            wait_until(lambda: not jobs.listening(worker_queue(first)), what="the worker gone")
        )
        fetch()
        assert _fetched_by(pg_platform, connection_id) == other
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
