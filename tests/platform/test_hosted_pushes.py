"""A push to this server's built-in host queues the fetch of every project connected to the
pushed repository on this server — no webhook, no fetch requested — and no other project's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from repolink.app import Repolink
from repolink.keys import generate_key
from repolink.platform.connections import create_connection
from repolink.platform.fetch_dispatch import fetch_lock
from repolink.platform.fetch_queue import FETCH_CONNECTION
from repolink.platform.fetch_worker import FetchWorker
from repolink.platform.hosted_pushes import (
    ServerAddress,
    connections_of_hosted,
    queue_after_shell_push,
)
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.fetch_runs import FetchRun
from repolink.store.models.platform import KEY_GENERATED
from repolink.urls import parse_ssh_url
from support.hostkit import LoopThread, start_embedded_host
from support.platformkit import HostedRepos, Platform, populate
from support.procrastinatekit import jobs_of
from support.recording import RecordingRunner

pytestmark = pytest.mark.databases

WAIT = 120.0


@pytest.fixture
def same_server(tmp_path: Path) -> Iterator[tuple[HostedRepos, Platform, dict[str, Any]]]:
    """The built-in host and the platform on one data directory and store, as in ``serve``:
    the host's pushes go to ``background["worker"]`` once a test puts a fetch worker there."""
    loop = LoopThread()
    background: dict[str, Any] = {"loop": loop}

    async def on_push(repository: Any, updates: Any) -> None:
        worker: FetchWorker | None = background.get("worker")
        if worker is not None:
            await worker.on_push(repository, updates)

    host, stop = start_embedded_host(tmp_path / "server", loop, on_push=on_push)
    try:
        repos = populate(host)
        platform = Platform(host.settings, host.store, host)
        platform.trust_host()
        yield repos, platform, background
    finally:
        worker = background.get("worker")
        if worker is not None:
            loop.run(worker.stop())
        stop()
        loop.stop()


def test_a_push_to_the_built_in_host_fetches_the_connected_projects(
    same_server: tuple[HostedRepos, Platform, dict[str, Any]],
) -> None:
    repos, platform, background = same_server
    assert platform.connect("app", repos.app.url(), grant_on="app").ok
    assert platform.connect("other", repos.other.url(), grant_on="other").ok
    service = platform.app.fetch_requests
    worker = platform.app.fetch_worker(
        concurrency=2, ssh_url_base=f"ssh://git@127.0.0.1:{repos.host.port}"
    )
    background["loop"].run(worker.start())
    background["worker"] = worker

    sha = repos.app.commit("pushed, never fetched by hand")

    deadline = time.monotonic() + WAIT
    while not [run for run in service.history("app") if run.finished]:
        assert time.monotonic() < deadline, "the push queued no fetch"
        time.sleep(0.05)
    [run] = service.history("app")
    assert (run.trigger, run.state, run.new_commits) == ("push", "done", 1)
    page = platform.app.commits.list_commits("app", limit=1)
    assert [commit.sha for commit in page.commits] == [sha]
    assert service.history("other") == []  # another repository's project heard nothing


def test_after_an_openssh_push_the_connected_projects_are_fetched_by_others(
    same_server: tuple[HostedRepos, Platform, dict[str, Any]], database_backend: str
) -> None:
    """The shell's part, with the embedded host standing in for sshd: the runs are queued in
    the calling process and carried out by the detached ``repolink host run-fetches`` on
    SQLite; on PostgreSQL queueing them woke procrastinate's workers, and no process is
    started."""
    repos, platform, background = same_server
    assert platform.connect("app", repos.app.url(), grant_on="app").ok
    assert platform.connect("other", repos.other.url(), grant_on="other").ok
    sha = repos.app.commit("pushed; the server has no fetch worker")
    service = platform.app.fetch_requests
    recording = RecordingRunner()

    unset = queue_after_shell_push(platform.settings, service, "team/app", runner=recording)
    assert unset == [] and service.history("app") == [] and recording.records == []

    settings = platform.settings.model_copy(
        update={"openssh_url": f"ssh://git@127.0.0.1:{repos.host.port}"}
    )
    [run_id] = queue_after_shell_push(settings, service, "team/app", runner=recording)

    if database_backend == "postgresql":
        assert recording.records == []
        connection_id = platform.app.connections.connection_info("app").id
        [woken] = jobs_of(platform.settings.database_url or "", FETCH_CONNECTION)
        assert (woken["status"], woken["queueing_lock"]) == ("todo", fetch_lock(connection_id))
        worker = platform.app.jobs_worker(concurrency=1)
        assert worker is not None
        background["loop"].run(worker.start())
        background["worker"] = worker
    else:
        [started] = recording.records
        assert (started.kind, started.argv[-3:]) == (
            "start_detached",
            ("host", "run-fetches", str(run_id)),
        )
    deadline = time.monotonic() + WAIT
    while not service.get_run(run_id).finished:
        assert time.monotonic() < deadline, "the detached process did not carry the run out"
        time.sleep(0.05)
    run = service.get_run(run_id)
    assert (run.project, run.trigger, run.state, run.new_commits) == ("app", "push", "done", 1)
    assert [commit.sha for commit in platform.app.commits.list_commits("app", limit=1).commits] == [
        sha
    ]
    assert service.history("other") == []


def _save(store: Store, settings: Settings, slug: str, url: str) -> str:
    app = Repolink(settings, store=store)
    app.projects.create_project(slug.title(), slug=slug)
    with store.session() as session:
        return create_connection(
            session, app.vault(), slug, parse_ssh_url(url), generate_key(), origin=KEY_GENERATED
        ).id


def test_which_connection_urls_name_a_hosted_repository_on_this_server(
    settings: Settings, store: Store
) -> None:
    server = ServerAddress.from_ssh_url_base("ssh://git@127.0.0.1:2222")
    assert server is not None
    same = [
        _save(store, settings, "plain", "ssh://git@127.0.0.1:2222/team/app.git"),
        _save(store, settings, "nogit", "ssh://git@127.0.0.1:2222/team/app"),
        _save(store, settings, "upper", "ssh://git@127.0.0.1:2222/Team/App.git"),
        _save(store, settings, "named", "ssh://git@localhost:2222/team/app.git"),
    ]
    for slug, url in (
        ("port", "ssh://git@127.0.0.1:2223/team/app.git"),  # another server on this machine
        ("host", "ssh://git@git.example.com:2222/team/app.git"),
        ("path", "ssh://git@127.0.0.1:2222/team/other.git"),
        ("deeper", "ssh://git@127.0.0.1:2222/team/app/more.git"),
    ):
        _save(store, settings, slug, url)

    with store.session() as session:
        assert sorted(connections_of_hosted(session, "team/app", server)) == sorted(same)
        assert connections_of_hosted(session, "nobody/nothing", server) == []


def test_the_default_port_and_an_unreadable_base() -> None:
    default = ServerAddress.from_ssh_url_base("ssh://git@git.example.com")
    assert default == ServerAddress(frozenset({"git.example.com"}), None)
    assert ServerAddress.from_ssh_url_base("https://git.example.com") is None


def test_a_worker_without_a_server_address_ignores_pushes(platform: Platform) -> None:
    class Pushed:
        full_name = "team/app"

    worker = platform.app.fetch_worker()
    asyncio.run(worker.on_push(Pushed(), ["refs/heads/main"]))
    with platform.store.session() as session:
        assert session.scalar(select(func.count()).select_from(FetchRun)) == 0
