"""The fetch queue's two rules on a real SQLite store: one waiting run per connection (a
request joins it, across threads and processes), one running (a busy connection's waiting run
is not claimed); retries, cancellation and abandoned leases."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from repolink.app import Repolink
from repolink.jobs import Outcome
from repolink.jobs.queue import Settled, State
from repolink.keys import generate_key
from repolink.platform.connections import create_connection
from repolink.platform.fetch_jobs import FETCH_RETRY_POLICY, settle
from repolink.platform.fetch_queue import FETCH_CONNECTION, FETCH_LEASE, FetchQueue
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.fetch_runs import FetchRun
from repolink.store.models.platform import KEY_GENERATED
from repolink.urls import parse_ssh_url
from support.postgres import database_env

pytestmark = pytest.mark.databases


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def app(settings: Settings, store: Store) -> Repolink:
    return Repolink(settings, store=store)


def _connected(app: Repolink, slug: str) -> tuple[str, str]:
    """Project ``slug`` with a saved connection (never fetched); its connection and project ids."""
    project = app.projects.create_project(slug.title(), slug=slug)
    with app.store.session() as session:
        info = create_connection(
            session,
            app.vault(),
            slug,
            parse_ssh_url(f"ssh://git@127.0.0.1:9/team/{slug}.git"),
            generate_key(),
            origin=KEY_GENERATED,
        )
    return info.id, project.id


def _request(queue: FetchQueue, ids: tuple[str, str], trigger: str = "api") -> tuple[int, bool]:
    return queue.request(connection_id=ids[0], project_id=ids[1], trigger=trigger, actor=None)


def _row(store: Store, run_id: int) -> FetchRun:
    with store.session() as session:
        row = session.get(FetchRun, run_id)
        assert row is not None
        return row


def _statuses(store: Store) -> list[tuple[int, str]]:
    with store.session() as session:
        return [
            (row.id, row.status) for row in session.scalars(select(FetchRun).order_by(FetchRun.id))
        ]


def test_a_request_while_one_waits_joins_it(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    alpha, beta = _connected(app, "alpha"), _connected(app, "beta")

    first = _request(queue, alpha, "webhook")
    again = _request(queue, alpha, "api")
    other = _request(queue, beta)

    assert first[1] and not again[1] and other[1]
    assert again[0] == first[0] != other[0]
    # The joined run keeps what its first request said.
    assert _row(app.store, first[0]).trigger == "webhook"
    assert _statuses(app.store) == [(first[0], "queued"), (other[0], "queued")]


def test_requests_from_many_threads_make_one_waiting_run(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    ids = _connected(app, "alpha")
    results: list[tuple[int, bool]] = []
    start = threading.Barrier(16)

    def ask() -> None:
        start.wait()
        for _ in range(5):
            results.append(_request(queue, ids))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 80
    assert len({run_id for run_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


_REQUEST_IN_A_PROCESS = """
import sys
from pathlib import Path
from repolink.settings import Settings
from repolink.store import Store
from repolink.platform.fetch_queue import FetchQueue
with Store.open(Settings(data_dir=Path(sys.argv[1]))) as store:
    queue = FetchQueue(store)
    for _ in range(5):
        run_id, _ = queue.request(
            connection_id=sys.argv[2], project_id=sys.argv[3], trigger="webhook", actor=None
        )
        print(run_id)
"""


def test_requests_from_several_processes_make_one_waiting_run(
    app: Repolink, settings: Settings
) -> None:
    connection_id, project_id = _connected(app, "alpha")
    argv = [sys.executable, "-c", _REQUEST_IN_A_PROCESS, str(settings.data_dir)]
    processes = [
        subprocess.Popen(
            [*argv, connection_id, project_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **database_env(settings.data_dir)},
        )
        for _ in range(2)
    ]
    ids = set()
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
        ids |= set(out.split())
    assert len(ids) == 1
    assert [status for _, status in _statuses(app.store)] == ["queued"]


def test_a_busy_connection_gets_a_second_run_waiting_but_not_claimed(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    alpha, beta = _connected(app, "alpha"), _connected(app, "beta")
    first, _ = _request(queue, alpha)

    [job] = queue.claim([FETCH_CONNECTION], 4)
    assert (job.id, job.kind, job.attempt) == (first, FETCH_CONNECTION, 1)
    second, created = _request(queue, alpha)  # arrives while the first runs: a new one waits
    third, _ = _request(queue, alpha)
    other, _ = _request(queue, beta)

    assert created and second != first and third == second
    # The waiting run of the busy connection is left alone; another connection's is taken.
    assert [claimed.id for claimed in queue.claim([FETCH_CONNECTION], 4)] == [other]
    assert queue.claim_run(second) is None

    queue.finish(
        [Settled(job, State.DONE, details={"new_commits": 3, "first_seq": 10, "last_seq": 12})]
    )
    done = _row(app.store, first)
    assert (done.status, done.new_commits, done.first_seq, done.last_seq) == ("done", 3, 10, 12)
    assert done.finished_at is not None and done.claimed_until is None
    assert [claimed.id for claimed in queue.claim([FETCH_CONNECTION], 4)] == [second]


def test_other_kinds_are_not_claimed_here(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    _request(queue, _connected(app, "alpha"))
    assert queue.claim(["deliver_webhook"], 4) == []
    assert queue.next_due(["deliver_webhook"]) is None


def test_a_transient_failure_waits_for_its_retry_unless_another_run_waits(app: Repolink) -> None:
    clock = Clock()
    queue = FetchQueue(app.store, clock=clock)
    ids = _connected(app, "alpha")
    first, _ = _request(queue, ids)
    [job] = queue.claim([FETCH_CONNECTION], 1)
    failure = Outcome.failed(
        "timeout", details={"error_code": "timeout", "error_message": "it took too long"}
    )

    queue.finish([settle(job, failure, FETCH_RETRY_POLICY, clock.now)])
    row = _row(app.store, first)
    assert (row.status, row.error_code, row.error_message) == (
        "queued",
        "timeout",
        "it took too long",
    )
    assert row.next_attempt_at == clock.now + FETCH_RETRY_POLICY.delay_after(1)
    assert queue.claim([FETCH_CONNECTION], 1) == []  # not due before its backoff
    assert _request(queue, ids) == (first, False)  # a request joins the run awaiting its retry

    clock.advance(FETCH_RETRY_POLICY.delay_after(1).total_seconds())
    [retry] = queue.claim([FETCH_CONNECTION], 1)
    assert (retry.id, retry.attempt) == (first, 2)
    second, _ = _request(queue, ids)
    queue.finish([settle(retry, failure, FETCH_RETRY_POLICY, clock.now)])
    # The run waiting after it will fetch anyway: this one ends with its error.
    assert _statuses(app.store) == [(first, "failed"), (second, "queued")]
    assert _row(app.store, first).error_code == "timeout"


def test_a_definitive_failure_ends_the_run_at_once(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    first, _ = _request(queue, _connected(app, "alpha"))
    [job] = queue.claim([FETCH_CONNECTION], 1)
    refusal = Outcome.failed(
        "auth_failed", transient=False, details={"error_code": "auth_failed", "error_message": "no"}
    )
    queue.finish([settle(job, refusal, FETCH_RETRY_POLICY, datetime.now(UTC))])
    row = _row(app.store, first)
    assert (row.status, row.error_code, row.attempts) == ("failed", "auth_failed", 1)


def test_a_cancelled_run_waits_again_or_yields_to_the_one_waiting(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    ids = _connected(app, "alpha")
    first, _ = _request(queue, ids)
    queue.claim([FETCH_CONNECTION], 1)

    assert queue.requeue(first) == "queued"
    row = _row(app.store, first)
    assert (row.status, row.attempts, row.claimed_until) == ("queued", 0, None)
    [job] = queue.claim([FETCH_CONNECTION], 1)
    assert (job.id, job.attempt) == (first, 1)  # the cancelled attempt did not count

    second, _ = _request(queue, ids)
    assert queue.requeue(first) == "cancelled"
    assert _statuses(app.store) == [(first, "cancelled"), (second, "queued")]
    assert queue.requeue(12345) is None


def test_a_stopping_worker_releases_only_the_runs_still_running(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    alpha, beta = _connected(app, "alpha"), _connected(app, "beta")
    running, _ = _request(queue, alpha)
    settled, _ = _request(queue, beta)
    jobs = {job.id: job for job in queue.claim([FETCH_CONNECTION], 2)}
    # Beta's attempt ended on its own while the worker was being cancelled: recorded as done.
    queue.finish([settle(jobs[settled], Outcome.done(), FETCH_RETRY_POLICY, app.clock())])

    queue.release(list(jobs.values()))
    assert _statuses(app.store) == [(running, "queued"), (settled, "done")]
    assert _row(app.store, running).attempts == 0  # the cancelled attempt does not count
    queue.release([jobs[running]])  # released already (as its handler does): left alone
    assert _row(app.store, running).attempts == 0


def test_a_dead_workers_run_is_claimed_again_when_its_lease_ends(app: Repolink) -> None:
    clock = Clock()
    queue = FetchQueue(app.store, clock=clock, lease=timedelta(seconds=60))
    ids = _connected(app, "alpha")
    first, _ = _request(queue, ids)
    queue.claim([FETCH_CONNECTION], 1)
    assert app.connections.connection_info("alpha").state == "unknown"  # the lease is past

    clock.advance(30)
    assert queue.renew(first)
    clock.advance(59)
    assert queue.claim([FETCH_CONNECTION], 1) == []  # renewed: still its worker's
    assert queue.next_due([FETCH_CONNECTION]) == clock.now + timedelta(seconds=1)
    clock.advance(2)
    [again] = queue.claim([FETCH_CONNECTION], 1)
    assert (again.id, again.attempt) == (first, 2)


def test_the_connection_reads_fetching_while_a_run_runs(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    _request(queue, _connected(app, "alpha"))
    assert app.connections.connection_info("alpha").state == "unknown"

    [job] = queue.claim([FETCH_CONNECTION], 1)
    assert app.connections.connection_info("alpha").state == "fetching"

    queue.finish([Settled(job, State.DONE)])
    assert app.connections.connection_info("alpha").state == "unknown"


def test_a_removed_connection_takes_its_runs_with_it(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    _request(queue, _connected(app, "alpha"))
    [job] = queue.claim([FETCH_CONNECTION], 1)
    app.connections.disconnect("alpha")
    queue.finish([Settled(job, State.DONE)])  # nothing left to settle: no error
    assert _statuses(app.store) == []


def test_waiters_and_listeners_hear_of_changes(app: Repolink) -> None:
    queue = FetchQueue(app.store)
    heard: list[str] = []
    queue.add_listener(lambda: heard.append("woken"))
    generation = queue.generation

    _request(queue, _connected(app, "alpha"))

    assert heard == ["woken"]
    assert queue.wait_for_change(generation, timeout=5) == generation + 1


def test_a_gathering_run_is_due_later_and_a_request_without_one_brings_it_forward(
    app: Repolink,
) -> None:
    clock = Clock()
    queue = FetchQueue(app.store, clock=clock)
    ids = _connected(app, "alpha")
    gather = timedelta(seconds=1)

    run_id, created = queue.request(
        connection_id=ids[0], project_id=ids[1], trigger="webhook", actor=None, due_in=gather
    )
    assert created
    assert _row(app.store, run_id).next_attempt_at == clock.now + gather
    assert queue.claim([FETCH_CONNECTION], 5) == []  # not due: the burst is still gathering

    clock.advance(0.5)
    joined = queue.request(
        connection_id=ids[0], project_id=ids[1], trigger="webhook", actor=None, due_in=gather
    )
    # Joining never pushes the run further out: the first delivery set when it runs.
    assert joined == (run_id, False)
    assert _row(app.store, run_id).next_attempt_at == clock.now + timedelta(seconds=0.5)

    assert _request(queue, ids, "api") == (run_id, False)
    assert _row(app.store, run_id).next_attempt_at == clock.now
    assert [job.id for job in queue.claim([FETCH_CONNECTION], 5)] == [run_id]


def test_the_service_gathers_only_the_triggers_it_is_told_to(app: Repolink) -> None:
    settings = app.settings.model_copy(update={"webhook_gather": 2.0})
    with Repolink(settings, store=app.store) as gathering:
        _connected(gathering, "alpha")
        _connected(gathering, "beta")
        webhook = gathering.fetch_requests.request("alpha", trigger="webhook")
        api = gathering.fetch_requests.request("beta", trigger="api")
    waited = _row(app.store, webhook.id).next_attempt_at - webhook.requested_at
    assert waited == timedelta(seconds=2)
    assert _row(app.store, api.id).next_attempt_at == api.requested_at


def test_a_caller_that_runs_its_fetch_itself_gets_it_claimed_and_wakes_nobody(
    app: Repolink,
) -> None:
    clock = Clock()
    queue = FetchQueue(app.store, clock=clock)
    heard: list[str] = []
    queue.add_listener(lambda: heard.append("woken"))
    ids = _connected(app, "alpha")
    gathering, _ = queue.request(
        connection_id=ids[0],
        project_id=ids[1],
        trigger="webhook",
        actor=None,
        due_in=timedelta(seconds=5),
    )
    heard.clear()

    # It joins the webhook's gathering run, brings it forward and claims it, all at once.
    run_id, created, job = queue.request_claimed(
        connection_id=ids[0], project_id=ids[1], trigger="api", actor="alice"
    )

    assert (run_id, created) == (gathering, False)
    assert job is not None and (job.id, job.kind, job.attempt) == (run_id, FETCH_CONNECTION, 1)
    row = _row(app.store, run_id)
    assert (row.status, row.attempts, row.claimed_until) == ("running", 1, clock.now + FETCH_LEASE)
    assert heard == []  # no worker is woken to race the caller for it
    assert queue.claim([FETCH_CONNECTION], 4) == []


def test_a_caller_that_would_run_its_fetch_itself_waits_while_another_runs(
    app: Repolink,
) -> None:
    queue = FetchQueue(app.store)
    heard: list[str] = []
    queue.add_listener(lambda: heard.append("woken"))
    ids = _connected(app, "alpha")
    running, _, first = queue.request_claimed(
        connection_id=ids[0], project_id=ids[1], trigger="api", actor=None
    )
    assert first is not None

    waiting, created, second = queue.request_claimed(
        connection_id=ids[0], project_id=ids[1], trigger="api", actor=None
    )

    assert created and waiting != running and second is None
    assert _statuses(app.store) == [(running, "running"), (waiting, "queued")]
    assert heard == ["woken"]  # a waiting run is a worker's to take once the first ends
    queue.finish([Settled(first, State.DONE)])
    assert [job.id for job in queue.claim([FETCH_CONNECTION], 4)] == [waiting]


@pytest.mark.databases
def test_requests_keep_joining_the_waiting_run_on_a_reused_database_connection(
    app: Repolink,
) -> None:
    # On PostgreSQL, psycopg prepares a statement run 5 times on one connection and the server
    # then plans it generically: ON CONFLICT's partial index must be named by a predicate the
    # planner can match without the parameters' values (a bound 'queued' failed the 11th
    # request: "no unique or exclusion constraint matching the ON CONFLICT specification").
    queue = FetchQueue(app.store)
    ids = _connected(app, "alpha")
    first = _request(queue, ids)
    for n in range(25):
        assert (n, _request(queue, ids)) == (n, (first[0], False))
    assert _statuses(app.store) == [(first[0], "queued")]
