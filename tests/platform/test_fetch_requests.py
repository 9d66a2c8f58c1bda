"""Fetch requests against the built-in host over real ssh and git: a request queues a run
(or joins the waiting one), a worker or a waiter carries it out, the history says what it
did — new commits and their index range, or the error and whether it is retried."""

from __future__ import annotations

import asyncio
import socket

import pytest
from sqlalchemy import select

from repolink.errors import NotFound, ValidationError
from repolink.platform.fetch_jobs import execute_run, settle
from repolink.platform.fetch_queue import FETCH_CONNECTION
from repolink.store import utcnow
from repolink.store.models.platform import Commit
from support.platformkit import HostedRepos, Platform
from support.recording import RecordingRunner

pytestmark = pytest.mark.databases

WAIT = 120.0


def _added(platform: Platform, project: str, first: int, last: int) -> list[str]:
    """The commits a run added: one range query on the index."""
    connection_id = platform.app.connections.connection_info(project).id
    with platform.store.session() as session:
        return list(
            session.scalars(
                select(Commit.sha)
                .where(Commit.connection_id == connection_id, Commit.seq.between(first, last))
                .order_by(Commit.seq)
            )
        )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_requested_fetch_indexes_the_pushed_commit_and_records_its_range(
    platform: Platform, hosted: HostedRepos
) -> None:
    assert platform.connect("app", hosted.app.url(), grant_on="app").ok
    service = platform.app.fetch_requests
    sha = hosted.app.commit("requested fetch")

    run = service.request("app", trigger="api", actor="alice")
    assert (run.state, run.trigger, run.actor, run.project) == ("queued", "api", "alice", "app")
    assert service.request("app", trigger="webhook").id == run.id  # joins the waiting run

    done = service.wait(run.id, WAIT)

    assert (done.state, done.new_commits, done.error_code, done.attempts) == ("done", 1, None, 1)
    assert done.started_at is not None and done.finished_at is not None
    assert done.first_seq is not None and done.last_seq is not None
    assert _added(platform, "app", done.first_seq, done.last_seq) == [sha]
    assert [item.id for item in service.history("app")] == [run.id]
    assert service.get("app", run.id) == done
    assert platform.app.connections.connection_info("app").state == "ok"


def test_a_fetch_with_nothing_new_is_done_with_no_range(
    platform: Platform, hosted: HostedRepos
) -> None:
    assert platform.connect("same", hosted.app.url(), grant_on="app").ok
    service = platform.app.fetch_requests
    done = service.wait(service.request("same", trigger="poll").id, WAIT)
    assert (done.state, done.new_commits, done.first_seq, done.last_seq) == ("done", 0, None, None)


def test_a_definitive_failure_fails_the_run_and_the_connection_at_once(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.connect("refused", hosted.app.url())  # the key was never granted
    service = platform.app.fetch_requests

    failed = service.wait(service.request("refused", trigger="api").id, WAIT)

    assert (failed.state, failed.error_code, failed.attempts) == ("failed", "auth_failed", 1)
    assert failed.error_message and "refused the deploy key" in failed.error_message
    connection = platform.app.connections.connection_info("refused")
    assert (connection.state, connection.error_code) == ("failed", "auth_failed")


def test_a_transient_failure_waits_for_its_retry(platform: Platform) -> None:
    port = _closed_port()
    platform.connect("down", f"ssh://git@127.0.0.1:{port}/team/app.git")
    service = platform.app.fetch_requests

    run = service.wait(service.request("down", trigger="api").id, WAIT)

    assert (run.state, run.error_code, run.attempts) == ("queued", "connection_refused", 1)
    assert service.request("down", trigger="webhook").id == run.id
    assert platform.app.connections.connection_info("down").state == "failed"


def test_a_worker_carries_out_requests_in_the_background(
    platform: Platform, hosted: HostedRepos
) -> None:
    assert platform.connect("bg", hosted.app.url(), grant_on="app").ok
    service = platform.app.fetch_requests
    sha = hosted.app.commit("background fetch")

    async def scenario() -> int:
        worker = platform.app.fetch_worker(concurrency=2)
        await worker.start()
        try:
            run = await asyncio.to_thread(service.request, "bg", trigger="push")
            for _ in range(int(WAIT / 0.05)):
                if (await asyncio.to_thread(service.get_run, run.id)).finished:
                    break
                await asyncio.sleep(0.05)
            return run.id
        finally:
            await worker.stop()

    run_id = asyncio.run(scenario())
    done = service.get("bg", run_id)
    assert (done.state, done.new_commits) == ("done", 1)
    assert done.first_seq is not None and done.last_seq is not None
    assert _added(platform, "bg", done.first_seq, done.last_seq) == [sha]


def test_runs_carried_out_here_wait_while_another_worker_fetches_their_connection(
    platform: Platform, hosted: HostedRepos
) -> None:
    assert platform.connect("busy", hosted.app.url(), grant_on="app").ok
    service = platform.app.fetch_requests
    first = service.request("busy", trigger="api")
    [held] = service.queue.claim([FETCH_CONNECTION], 1)  # a server's worker runs it
    assert held.id == first.id
    sha = hosted.app.commit("pushed while a fetch runs")
    second = service.request("busy", trigger="push")

    # Tried, and left waiting: never two fetches of one connection at once.
    [waiting] = service.carry_out([second.id], timeout=0.5)
    assert (waiting.id, waiting.state, waiting.attempts) == (second.id, "queued", 0)

    outcome = execute_run(platform.store, platform.app.fetches, held)
    service.queue.finish([settle(held, outcome, service.policy, utcnow())])
    done = service.carry_out([second.id, 10**9], timeout=WAIT)  # an unknown run: left out
    assert [(run.id, run.state, run.trigger) for run in done] == [(second.id, "done", "push")]
    ended = service.get_run(first.id).finished_at
    assert ended is not None and done[0].started_at is not None
    assert done[0].started_at >= ended
    newest = platform.app.commits.list_commits("busy", limit=1).commits
    assert [commit.sha for commit in newest] == [sha]


def test_history_is_per_project_newest_first_and_bounded(
    platform: Platform, hosted: HostedRepos
) -> None:
    assert platform.connect("hist", hosted.app.url(), grant_on="app").ok
    assert platform.connect("else", hosted.other.url(), grant_on="other").ok
    service = platform.app.fetch_requests
    first = service.wait(service.request("hist", trigger="api").id, WAIT)
    second = service.request("hist", trigger="cli")
    mine = service.request("else", trigger="api")

    assert [run.id for run in service.history("hist")] == [second.id, first.id]
    assert [run.id for run in service.history("hist", limit=1)] == [second.id]
    with pytest.raises(NotFound) as missing:
        service.get("hist", mine.id)  # another project's run is not found through this one
    assert missing.value.code == "fetch_not_found"
    with pytest.raises(ValidationError) as bad_limit:
        service.history("hist", limit=0)
    assert bad_limit.value.code == "limit_invalid"


def test_requests_are_refused_for_unknown_triggers_projects_and_connections(
    platform: Platform,
) -> None:
    service = platform.app.fetch_requests
    platform.project("bare")
    with pytest.raises(ValidationError) as trigger:
        service.request("bare", trigger="whenever")
    assert trigger.value.code == "fetch_trigger_invalid"
    with pytest.raises(NotFound) as unconnected:
        service.request("bare", trigger="api")
    assert unconnected.value.code == "connection_not_found"
    with pytest.raises(NotFound) as project:
        service.request("nope", trigger="api")
    assert project.value.code == "project_not_found"
    with pytest.raises(NotFound) as connection:
        service.request_for_connection("0" * 32, trigger="push")
    assert connection.value.code == "connection_not_found"


def test_a_pushs_fetch_runs_git_fetch_without_comparing_refs_first(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner
) -> None:
    assert platform.connect("pushed", hosted.app.url(), grant_on="app").ok
    service = platform.app.fetch_requests

    def git_fetches() -> int:
        return sum(1 for run in recording.records if "fetch" in run.argv)

    recording.clear()
    asked = service.wait(service.request("pushed", trigger="api").id, WAIT)
    # Nothing moved: the refs compared equal and no git fetch ran.
    assert (asked.state, asked.new_commits, git_fetches()) == ("done", 0, 0)

    recording.clear()
    pushed = service.wait(service.request("pushed", trigger="push").id, WAIT)
    # A push moved the refs, so they are not listed first: git fetch runs at once.
    assert (pushed.state, pushed.new_commits, git_fetches()) == ("done", 0, 1)


def test_a_fetch_asked_for_with_its_answer_runs_in_the_askers_thread_and_is_history(
    platform: Platform, hosted: HostedRepos
) -> None:
    assert platform.connect("asked", hosted.app.url(), grant_on="app").ok
    service = platform.app.fetch_requests
    woken: list[str] = []
    service.queue.add_listener(lambda: woken.append("worker"))
    sha = hosted.app.commit("asked for")

    fetched = service.request_and_wait("asked", trigger="api", actor="alice", timeout=WAIT)
    same = service.request_and_wait("asked", trigger="api", actor="alice", timeout=WAIT)

    assert (fetched.state, fetched.new_commits, fetched.attempts) == ("done", 1, 1)
    assert fetched.first_seq is not None and fetched.last_seq is not None
    assert _added(platform, "asked", fetched.first_seq, fetched.last_seq) == [sha]
    # Nothing new: done, and recorded as such, with no range.
    assert (same.state, same.new_commits, same.first_seq, same.last_seq) == ("done", 0, None, None)
    assert service.history("asked")[:2] == [same, fetched]
    assert (same.trigger, same.actor) == ("api", "alice")
    # Both ran in this thread: no worker was woken to take them.
    assert woken == ["worker", "worker"]  # the two settlements, nothing at their queueing


def test_a_fetch_asked_for_with_its_answer_answers_its_first_failure(platform: Platform) -> None:
    platform.connect("down", f"ssh://git@127.0.0.1:{_closed_port()}/team/app.git")
    service = platform.app.fetch_requests

    run = service.request_and_wait("down", trigger="api", timeout=WAIT)

    # A transient failure is the answer now; the run waits for its retry meanwhile.
    assert (run.state, run.error_code, run.attempts) == ("queued", "connection_refused", 1)
