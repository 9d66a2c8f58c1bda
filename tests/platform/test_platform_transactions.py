"""No git process starts while the platform holds a database transaction.

A transaction held across a git run would hold the database (SQLite's write lock, a PostgreSQL
connection and its row locks) for as long as a network fetch or a walk of a large history
takes. The engine's own events say which connections are inside a transaction; the platform's
runner (the one place every git and ssh process starts: a recording runner around the real one,
which still does the work) records whether any is when a process starts — from whichever thread
starts it, as the streamed walks start git on a thread of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from repolink.git.environment import hardened_env
from repolink.git.stream import LineStream
from support.platformkit import HostedRepos, Platform, granted_key
from support.recording import RecordedRun, RecordingRunner

pytestmark = pytest.mark.databases


@dataclass
class Recorder:
    """Git processes started, each with whether a transaction of the platform was open."""

    runs: list[tuple[str, bool]] = field(default_factory=list)
    open: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inside(self) -> list[str]:
        return [what for what, inside in self.runs if inside]

    def started(self) -> list[str]:
        return [what for what, _inside in self.runs]


@pytest.fixture
def recorder(platform: Platform, recording: RecordingRunner) -> Iterator[Recorder]:
    recorder = Recorder()
    engine = platform.store.engine

    def began(connection: Any) -> None:
        with recorder.lock:
            recorder.open.add(id(connection))

    def ended(connection: Any) -> None:
        with recorder.lock:
            recorder.open.discard(id(connection))

    def starting(run: RecordedRun) -> None:
        words = list(run.argv)
        # The git subcommand (after git's own options), or the program's name.
        what = next((w for w in words[1:] if not w.startswith("-") and "=" not in w), words[0])
        with recorder.lock:
            recorder.runs.append((what, bool(recorder.open)))

    listeners = (("begin", began), ("commit", ended), ("rollback", ended))
    for name, listener in listeners:
        event.listen(engine, name, listener)
    recording.before_run = starting
    try:
        yield recorder
    finally:
        recording.before_run = None
        for name, listener in listeners:
            event.remove(engine, name, listener)


def test_the_recorder_sees_a_process_started_inside_a_transaction(
    platform: Platform, recorder: Recorder
) -> None:
    env = hardened_env(platform.settings.resolved_data_dir)
    runner = platform.app.runner
    with platform.store.session() as session:
        session.execute(text("SELECT 1"))
        runner.run(["git", "--version"], env=env, timeout=30)
        # A streamed run starts its process on a thread of its own: seen all the same.
        with LineStream(["git", "--version"], env=env, timeout=30, runner=runner) as lines:
            assert list(lines)
    runner.run(["git", "--version"], env=env, timeout=30)
    assert recorder.runs == [("git", True), ("git", True), ("git", False)]


def test_connect_fetch_list_checkout_and_remove_run_git_outside_transactions(
    platform: Platform, hosted: HostedRepos, recorder: Recorder, tmp_path: Path
) -> None:
    repo = hosted.other
    repo.git("branch", "-f", "short-lived", "main")
    repo.commit("only on short-lived", branch="short-lived")
    outcome = platform.connect("tx", repo.url(), granted_key(hosted.host, "other", "tx"))
    assert outcome.error is None, outcome.error

    repo.push(":short-lived")  # the index walks what no ref reaches any more
    repo.commit("one more")
    assert platform.fetch("tx").new_commits == 1
    assert platform.fetch("tx").skipped

    commits = platform.app.commits
    first = commits.list_commits("tx", ref="main", limit=1)
    assert first.next_cursor is not None
    assert commits.list_commits("tx", ref="main", limit=1, cursor=first.next_cursor).commits
    platform.app.checkouts.checkout_commit("tx", "main", tmp_path / "out")
    platform.app.connections.disconnect("tx")
    platform.app.projects.delete_project("tx")

    started = recorder.started()
    assert {"clone", "fetch", "rev-list", "read-tree", "checkout-index"} <= set(started), started
    assert recorder.inside() == []
