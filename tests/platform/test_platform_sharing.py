"""Fast refresh: one SSH connection serves every later fetch, and a refresh runs only the git
processes it needs — none at all when nothing changed and the shared connection is alive.
Proven by counting the TCP connections the host accepts (through a counting proxy in front
of the built-in host) and the git processes each fetch starts."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.errors import RepolinkError
from repolink.git import mirrors, sharing
from repolink.git.keyfiles import KEY_DIR_PREFIX
from repolink.keys import generate_key
from repolink.platform import scout
from repolink.store.key_records import store_private_key
from repolink.store.models import KeyRecord
from support.apikit import OWNER, platform_api
from support.platformkit import (
    WORKSPACE,
    CountingProxy,
    HostedRepos,
    Platform,
    control_socket_of,
    granted_key,
    master_command,
)
from support.recording import RecordedRun, RecordingRunner

FETCH_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
from repolink.app import Repolink
from repolink.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), git_timeout=120, ssh_connect_timeout=10)
with Repolink(settings) as app:
    result = app.fetches.fetch_project(sys.argv[2])
print(result.skipped, result.new_commits)
"""


@pytest.fixture
def proxy(platform: Platform, hosted: HostedRepos) -> Iterator[CountingProxy]:
    relay = CountingProxy(hosted.host.port)
    platform.trust_host(relay.port)  # scans the host key through the relay
    relay.accepted = 0
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture
def git_runs(recording: RecordingRunner, platform: Platform) -> list[str]:
    """The git subcommand of every process the platform starts through its runner's ``run``,
    in order (the run itself is real). The host in this same process runs git too: left out."""
    seen: list[str] = []
    data_dir = str(platform.settings.resolved_data_dir)

    def spy(run: RecordedRun) -> None:
        env = run.env
        if "GIT_SSH_COMMAND" in env or env["HOME"].startswith(data_dir):
            seen.append(_subcommand(run.argv))

    recording.before_run = spy
    return seen


def _subcommand(argv: Sequence[str]) -> str:
    args = iter(argv[1:])
    for arg in args:
        if arg == "-c":
            next(args)
        elif not arg.startswith("--git-dir="):
            return arg
    return ""


def test_refreshes_reuse_the_first_fetchs_ssh_connection(
    platform: Platform,
    hosted: HostedRepos,
    proxy: CountingProxy,
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    key = granted_key(hosted.host, "app", "sharing")
    outcome = platform.connect("sharing", hosted.app.url(proxy.port), key)
    assert outcome.error is None, outcome.error
    assert proxy.accepted == 1

    # The master of that first fetch outlives it, authenticated, while its key file is gone.
    check = master_command(control_socket_of(platform, "sharing"), tmp_path / "home", "check")
    assert check.returncode == 0 and "Master running" in check.stderr, check.stderr
    assert list(private_tmp.glob(f"{KEY_DIR_PREFIX}*")) == []

    assert platform.fetch("sharing").skipped
    hosted.app.commit("shared connection")
    changed = platform.fetch("sharing")
    assert not changed.skipped and changed.new_commits == 1
    # ls-remote, then ls-remote and fetch: all of them over that one connection.
    assert proxy.accepted == 1


def test_a_client_urls_pinned_connection_is_shared_by_runs_pinned_to_that_address(
    platform: Platform, hosted: HostedRepos, proxy: CountingProxy, private_tmp: Path
) -> None:
    url = hosted.app.url(proxy.port)
    with contextlib.contextmanager(platform_api)(platform.app) as api:
        api.create("app")
        put = api.ok(OWNER, "PUT", "/projects/app/repository", json={"url": url, "generate": {}})
    hosted.host.service.add_access_key(WORKSPACE, "app", put["deploy_key"]["public_key"], label="p")

    platform.fetch("app")
    assert platform.fetch("app").skipped
    # The refresh listed the refs on the first fetch's master, opened to the pinned address.
    assert proxy.accepted == 1
    pinned = control_socket_of(platform, "app", pinned_address="127.0.0.1")
    assert pinned.is_socket()
    elsewhere = control_socket_of(platform, "app", pinned_address="127.0.0.2")
    assert len({pinned, elsewhere, control_socket_of(platform, "app")}) == 3


def test_a_fetch_in_a_new_process_reuses_the_connection(
    platform: Platform,
    hosted: HostedRepos,
    proxy: CountingProxy,
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    key = granted_key(hosted.host, "other", "sharing-process")
    platform.connect("sharing-process", hosted.other.url(proxy.port), key)
    assert proxy.accepted == 1
    sha = hosted.other.commit("fetched by another process")
    home = tmp_path / "home"
    home.mkdir()

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            FETCH_IN_A_NEW_PROCESS,
            str(platform.settings.resolved_data_dir),
            "sharing-process",
        ],
        env={**os.environ, "HOME": str(home), "TMPDIR": str(private_tmp)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "1"]
    assert proxy.accepted == 1
    assert platform.app.connections.connection_info("sharing-process").state == "ok"
    assert sha in hosted.other.host_commits()


def test_each_kind_of_fetch_runs_only_the_git_processes_it_needs(
    platform: Platform, hosted: HostedRepos, git_runs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small history's clone reports its size at once, and gets no scout; on a loaded machine
    # that report can come after SIZE_WAIT, which the scout takes for a large history being
    # enumerated: its partial clone, and an index run of the mirror that finds the commits
    # indexed, would then be counted too. Here the scout waits for the report, as it would
    # on an idle machine (the scout's timing is tests/platform/test_platform_scout.py's).
    monkeypatch.setattr(scout, "SIZE_WAIT", 120.0)  # longer than the clone: it ends first
    platform.connect("lean", hosted.other.url(), granted_key(hosted.host, "other", "lean"))
    # A first fetch has nothing to compare: no ls-remote before it.
    assert git_runs == ["clone", "config", "for-each-ref", "rev-list"]

    git_runs.clear()
    assert platform.fetch("lean").skipped
    # Nothing new: the mirror's ref files read, the remote's refs listed as a passenger of
    # the first fetch's shared connection, the index unchanged — no process at all.
    assert git_runs == []

    git_runs.clear()
    hosted.other.commit("one more for lean")
    assert platform.fetch("lean").new_commits == 1
    # The branch moved forward: its old tip is the new commit's parent, so no second walk
    # looks for commits to drop.
    assert git_runs == ["fetch", "for-each-ref", "rev-list"]


def test_without_a_live_master_a_refresh_lists_refs_with_git_and_shares_again(
    platform: Platform,
    hosted: HostedRepos,
    git_runs: list[str],
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    platform.connect("restart", hosted.other.url(), granted_key(hosted.host, "other", "restart"))
    socket_path = control_socket_of(platform, "restart")
    stopped = master_command(socket_path, tmp_path / "home", "exit")
    assert stopped.returncode == 0, stopped.stderr
    git_runs.clear()

    assert platform.fetch("restart").skipped
    assert git_runs == ["ls-remote"]  # the passenger found no master: git's own listing
    assert master_command(socket_path, tmp_path / "home", "check").returncode == 0

    git_runs.clear()
    assert platform.fetch("restart").skipped
    assert git_runs == []  # and the master that ls-remote left behind serves the next one


def test_a_revoked_key_fails_the_next_refresh_even_on_a_live_shared_connection(
    platform: Platform, hosted: HostedRepos, git_runs: list[str]
) -> None:
    key = granted_key(hosted.host, "other", "revoked")
    platform.connect("revoked", hosted.other.url(), key)
    assert platform.fetch("revoked").skipped
    service = hosted.host.service
    fingerprint = key.public_key.sha256_fingerprint
    (granted,) = [
        k for k in service.list_access_keys("team", "other") if k.fingerprint_sha256 == fingerprint
    ]
    service.remove_access_key("team", "other", granted.id)
    git_runs.clear()

    with pytest.raises(RepolinkError) as failed:
        platform.fetch("revoked")

    # The host refused the passenger's command; git ls-remote then named the error.
    assert failed.value.code == "repo_not_found"
    assert git_runs == ["ls-remote"]


def test_a_refresh_that_moves_one_branch_and_deletes_another_drops_only_its_commits(
    platform: Platform, hosted: HostedRepos, git_runs: list[str]
) -> None:
    repo = hosted.other
    repo.git("branch", "-f", "gone", "main")
    only_on_gone = repo.commit("only on gone", branch="gone")
    platform.connect("moves", repo.url(), granted_key(hosted.host, "other", "moves"))
    git_runs.clear()

    repo.push(":gone")
    ahead = repo.commit("main moves on")
    result = platform.fetch("moves")

    assert (result.new_commits, result.removed_commits) == (1, 1)
    assert git_runs[-2:] == ["rev-list", "rev-list"]  # the deleted tip needed its own walk
    shas = {c.sha for c in platform.app.commits.list_commits("moves").commits}
    assert ahead in shas and only_on_gone not in shas
    assert shas == set(repo.host_commits("main"))


class SilentMaster:
    """A control socket whose "master" accepts and never says a word: a stalled connection."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen()
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self._accepted.append(self._listener.accept()[0])

    def close(self) -> None:
        self._listener.close()
        for sock in self._accepted:
            sock.close()


def test_a_stalled_shared_connection_is_left_for_one_of_the_runs_own(
    platform: Platform,
    hosted: HostedRepos,
    git_runs: list[str],
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    platform.connect("stalled", hosted.other.url(), granted_key(hosted.host, "other", "stalled"))
    socket_path = control_socket_of(platform, "stalled")
    assert master_command(socket_path, tmp_path / "home", "exit").returncode == 0
    silent = SilentMaster(socket_path)
    impatient = platform.settings.model_copy(update={"ssh_connect_timeout": 1})
    git_runs.clear()
    try:
        result = Repolink(
            impatient, store=platform.store, runner=platform.runner
        ).fetches.fetch_project("stalled")
    finally:
        silent.close()

    # The passenger gave up after its deadline; git then listed the refs on a connection of
    # its own (through the stalled socket, it would have waited just the same).
    assert result.skipped
    assert git_runs == ["ls-remote"]


def test_a_key_the_vault_cannot_decrypt_fails_even_a_refresh_that_would_skip(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.connect("undecryptable", hosted.other.url(), granted_key(hosted.host, "other", "u"))
    assert platform.fetch("undecryptable").skipped
    info = platform.app.connections.connection_info("undecryptable")
    with platform.store.session() as session:
        record = session.get(KeyRecord, info.deploy_key.id)
        assert record is not None and record.private_key_encrypted is not None
        # Another row's ciphertext: it does not decrypt for this record (the id is the AAD).
        other = store_private_key(session, platform.app.vault(), generate_key(), label="x")
        record.private_key_encrypted = other.private_key_encrypted

    with pytest.raises(RepolinkError) as failed:
        platform.fetch("undecryptable")

    assert failed.value.code == "vault_decrypt_failed"
    assert platform.app.connections.connection_info("undecryptable").state == "failed"


def _connect_older_and_newer(platform: Platform, hosted: HostedRepos) -> None:
    """Projects "older" and "newer" on two repositories, each with a key of its own: two
    shared connections, "newer" used last."""
    older = platform.connect("older", hosted.app.url(), granted_key(hosted.host, "app", "older"))
    newer = platform.connect("newer", hosted.other.url(), granted_key(hosted.host, "other", "new"))
    assert older.error is None and newer.error is None


def _assert_master_running(socket: Path, home: Path) -> None:
    check = master_command(socket, home, "check")
    assert check.returncode == 0 and "Master running" in check.stderr, check.stderr


def test_a_server_keeps_connections_warm_longer_and_bounded_in_number(
    platform: Platform,
    hosted: HostedRepos,
    recording: RecordingRunner,
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    fetches = platform.app.fetches
    fetches.keep_connections_warm()  # what a server's fetch worker does at its start
    persists: list[str] = []

    def spy(run: RecordedRun) -> None:
        command = run.env.get("GIT_SSH_COMMAND", "")
        persists.extend(part for part in command.split() if part.startswith("ControlPersist="))

    recording.before_run = spy
    _connect_older_and_newer(platform, hosted)
    # Masters of their own (another key each), started to outlive their use 15 minutes.
    assert set(persists) == {f"ControlPersist={platform.settings.server_ssh_control_persist}"}
    sockets = [control_socket_of(platform, slug) for slug in ("older", "newer")]
    assert platform.fetch("newer").skipped  # used last

    bounded = platform.settings.model_copy(update={"server_max_warm_connections": 1})
    server_fetches = Repolink(bounded, store=platform.store, runner=recording).fetches
    assert server_fetches.close_least_used_connections() == [sockets[0]]

    home = tmp_path / "home"
    assert master_command(sockets[0], home, "check").returncode != 0
    _assert_master_running(sockets[1], home)
    assert platform.fetch("newer").skipped  # still warm: no new connection needed


def test_a_server_closes_the_connections_beyond_its_bound_as_each_fetch_ends(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner, tmp_path: Path
) -> None:
    # Closed only by the periodic pass, four workers fetching 200 repositories held the
    # built-in host's 256 connections within seconds, and their next fetches were refused.
    _connect_older_and_newer(platform, hosted)
    sockets = [control_socket_of(platform, slug) for slug in ("older", "newer")]
    bounded = platform.settings.model_copy(update={"server_max_warm_connections": 1})
    server = Repolink(bounded, store=platform.store, runner=recording).fetches
    server.keep_connections_warm()

    assert server.fetch_project("older").skipped
    assert server.fetch_project("newer").skipped

    home = tmp_path / "home"
    assert master_command(sockets[0], home, "check").returncode != 0
    _assert_master_running(sockets[1], home)


def test_closing_the_least_used_connections_spares_those_fetches_run_on(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner, tmp_path: Path
) -> None:
    _connect_older_and_newer(platform, hosted)
    sockets = [control_socket_of(platform, slug) for slug in ("older", "newer")]

    closed = sharing.close_least_used(
        platform.settings,
        keep=0,
        env=mirrors.local_env(platform.settings),
        runner=recording,
        spare={sockets[0]},
    )

    # (Other tests' masters may share the directory: only these two are looked at.)
    assert sockets[1] in closed and sockets[0] not in closed
    _assert_master_running(sockets[0], tmp_path / "home")
