"""The scout of a first fetch: the commits fetched alone (a partial clone) and indexed while
the clone runs, over the clone's own SSH connection, and forgotten whenever it cannot help.

The threshold is set to one object here so the small hosted repositories get a scout; the
default (tens of thousands of objects) is what the benchmark exercises."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from repolink import knownhosts
from repolink.git import mirrors
from repolink.git.environment import git_argv
from repolink.git.keyfiles import KEY_DIR_PREFIX
from repolink.git.progress import FetchProgress
from repolink.git.remote import open_remote
from repolink.knownhosts import TrustedHostKey
from repolink.platform.index import IndexResult
from repolink.platform.scout import SIZE_WAIT, Scout
from repolink.settings import Settings
from repolink.store import Store
from repolink.urls import parse_ssh_url
from support.platformkit import CountingProxy, HostedRepos, Platform, granted_key
from support.recording import RecordedRun, RecordingRunner


@pytest.fixture
def scouting_platform(
    tmp_path: Path, hosted: HostedRepos, recording: RecordingRunner
) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path / "platform", git_timeout=120, ssh_connect_timeout=10, scout_min_objects=1
    )
    with Store.open(settings) as store:
        kit = Platform(settings, store, hosted.host, runner=recording)
        kit.trust_host()
        yield kit


@pytest.fixture
def platform_runs(
    recording: RecordingRunner, scouting_platform: Platform
) -> list[tuple[list[str], dict[str, str]]]:
    """The argv and environment of every process the platform starts through its runner's
    ``run`` (the runs are real; the host's own git in this process is left out)."""
    seen: list[tuple[list[str], dict[str, str]]] = []
    data_dir = str(scouting_platform.settings.resolved_data_dir)

    def spy(run: RecordedRun) -> None:
        env = run.env
        if "GIT_SSH_COMMAND" in env or env["HOME"].startswith(data_dir):
            seen.append((list(run.argv), dict(env)))

    recording.before_run = spy
    return seen


def _index_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """What each index run logged, and the thread it ran on (the scout's is its own)."""
    return [
        (r.threadName or "", r.getMessage())
        for r in caplog.records
        if r.name == "repolink.platform.index"
    ]


def _listed(platform: Platform, project: str) -> list[str]:
    page = platform.app.commits.list_commits(project, limit=500)
    return [commit.sha for commit in page.commits]


def test_the_scout_indexes_a_first_fetch_over_the_clones_one_connection(
    scouting_platform: Platform,
    hosted: HostedRepos,
    platform_runs: list[tuple[list[str], dict[str, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay = CountingProxy(hosted.host.port)
    try:
        scouting_platform.trust_host(relay.port)
        relay.accepted = 0
        caplog.set_level(logging.INFO, logger="repolink.platform")
        key = granted_key(hosted.host, "app", "scouted")

        outcome = scouting_platform.connect("scouted", hosted.app.url(relay.port), key)

        assert outcome.error is None, outcome.error
        assert relay.accepted == 1  # the scout rode the clone's shared connection
    finally:
        relay.close()
    clones = {"--filter=tree:0" in argv: env for argv, env in platform_runs if "clone" in argv}
    assert set(clones) == {False, True}  # the mirror's clone and the scout's partial one
    # The scout's ssh is the clone's: the same hardened environment, key file and known hosts.
    assert clones[True] == clones[False]
    key_dir = Path(clones[True]["HOME"])
    assert key_dir.name.startswith(KEY_DIR_PREFIX) and not key_dir.exists()
    everything = hosted.app.host_commits()
    # The scout indexed every commit; the mirror's own index run found nothing left to do.
    assert _index_logs(caplog) == [
        (
            "platform-scout",
            f"indexed connection {outcome.connection.id}: {len(everything)} new commits, "
            "0 dropped, 4 refs",
        )
    ]
    assert outcome.fetch is not None and outcome.fetch.new_commits == len(everything)
    assert _listed(scouting_platform, "scouted") == hosted.app.host_commits("main")
    path = mirrors.mirror_path(scouting_platform.settings, outcome.connection.id)
    assert not mirrors.scout_path(path).exists()
    # The mirror is a full clone, not the partial one: every tree and blob is there.
    subprocess.run(["git", f"--git-dir={path}", "fsck", "--connectivity-only"], check=True)
    assert scouting_platform.app.connections.connection_info("scouted").state == "ok"


@pytest.fixture
def no_partial_clones(hosted: HostedRepos) -> Iterator[None]:
    """``team/other`` served like a server without partial clone support."""
    config = ["git", f"--git-dir={hosted.other.path}", "config"]
    subprocess.run([*config, "uploadpack.allowFilter", "false"], check=True)
    try:
        yield
    finally:
        subprocess.run([*config, "uploadpack.allowFilter", "true"], check=True)


@pytest.mark.usefixtures("no_partial_clones")
def test_a_server_without_partial_clones_gets_no_scout_and_the_clone_indexes_everything(
    scouting_platform: Platform,
    hosted: HostedRepos,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="repolink.platform")
    key = granted_key(hosted.host, "other", "unscouted")

    outcome = scouting_platform.connect("unscouted", hosted.other.url(), key)

    assert outcome.error is None, outcome.error
    assert any("serves no partial clone: no scout" in r.getMessage() for r in caplog.records)
    everything = hosted.other.host_commits()
    assert outcome.fetch is not None and outcome.fetch.new_commits == len(everything)
    # The mirror's own index run, with every commit.
    assert [thread for thread, _ in _index_logs(caplog)] == ["MainThread"]
    assert _listed(scouting_platform, "unscouted") == everything
    # The scout's clone was stopped at git's warning, before any pack: it left no directory.
    path = mirrors.mirror_path(scouting_platform.settings, outcome.connection.id)
    assert not mirrors.scout_path(path).exists()


def test_a_small_history_gets_no_scout(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner
) -> None:
    assert platform.settings.scout_min_objects > 1000
    outcome = platform.connect("small", hosted.other.url(), granted_key(hosted.host, "other", "s"))
    argvs = [run.argv for run in recording.runs()]

    assert outcome.error is None, outcome.error
    assert not [argv for argv in argvs if "--filter=tree:0" in argv]


@contextlib.contextmanager
def _beside_a_clone(
    platform: Platform,
    hosted: HostedRepos,
    index: Callable[[Path], IndexResult],
    settings: Settings,
    mirror_path: Path,
) -> Iterator[Scout]:
    """A scout for ``mirror_path`` in a real remote session with ``team/other``, the body
    standing in for the clone; the session's shared connection is brought up first, as the
    clone's ssh would."""
    key = granted_key(hosted.host, "other", f"scout-{mirror_path.name[:6]}")
    url = parse_ssh_url(hosted.other.url())
    with (
        open_remote(
            settings, url, key, trusted=_trusted(platform, hosted), runner=platform.runner
        ) as remote,
        Scout(remote, mirror_path, index, settings=settings) as scout,
    ):
        done = remote.run(git_argv("ls-remote", "--", remote.url.git_url))
        assert done.ok, done.stderr
        yield scout


def _mirror_in(tmp_path: Path, digit: str) -> Path:
    path = tmp_path / "mirrors" / f"{digit * 32}.git"
    path.parent.mkdir(exist_ok=True)
    return path


def test_a_failing_scout_is_forgotten_and_its_directory_removed(
    scouting_platform: Platform,
    hosted: HostedRepos,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="repolink.platform.scout")
    path = _mirror_in(tmp_path, "2")
    seen: list[Path] = []

    def broken_index(repository: Path) -> IndexResult:
        seen.append(repository)
        assert (repository / "HEAD").is_file()  # the scout's partial clone is there to index
        raise RuntimeError("the index broke")

    settings = scouting_platform.settings
    with _beside_a_clone(scouting_platform, hosted, broken_index, settings, path) as scout:
        scout.observe(FetchProgress("Receiving objects", done=1, total=1))

    assert seen == [mirrors.scout_path(path)]
    assert scout.result is None and scout.new_commits == 0
    assert not mirrors.scout_path(path).exists()
    assert any("gave up" in r.getMessage() for r in caplog.records)


def test_a_clone_that_reports_no_size_in_time_gets_a_scout(
    scouting_platform: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    # A large history: the server is still enumerating, nothing is reported yet.
    settings = scouting_platform.settings.model_copy(update={"scout_min_objects": 10**9})
    indexed = threading.Event()

    def index(repository: Path) -> IndexResult:
        indexed.set()
        return IndexResult(new_commits=3, removed_commits=0, refs=1, changed=True)

    path = _mirror_in(tmp_path, "3")
    with _beside_a_clone(scouting_platform, hosted, index, settings, path) as scout:
        # The clone goes on while the scout fetches and indexes, with no progress at all.
        assert indexed.wait(timeout=30)

    assert scout.new_commits == 3
    assert not mirrors.scout_path(path).exists()


def test_a_clone_that_reports_a_small_history_gets_no_scout(
    scouting_platform: Platform,
    hosted: HostedRepos,
    tmp_path: Path,
    recording: RecordingRunner,
) -> None:
    settings = scouting_platform.settings.model_copy(update={"scout_min_objects": 1000})
    partial_clones: list[Sequence[str]] = []

    def spy(run: RecordedRun) -> None:
        if "--filter=tree:0" in run.argv:
            partial_clones.append(run.argv)

    recording.before_run = spy

    def index(repository: Path) -> IndexResult:
        raise AssertionError("a small history needs no scout")

    path = _mirror_in(tmp_path, "4")
    with _beside_a_clone(scouting_platform, hosted, index, settings, path) as scout:
        scout.observe(FetchProgress("Enumerating objects", done=9))  # a count: may grow
        scout.observe(FetchProgress("Counting objects", done=9, total=9, percent=100))
        time.sleep(3 * SIZE_WAIT)  # the clone runs on, well past the wait for its size

    assert partial_clones == []
    assert scout.result is None


def _trusted(platform: Platform, hosted: HostedRepos) -> list[TrustedHostKey]:
    with platform.store.session() as session:
        return knownhosts.trusted_keys(session, "127.0.0.1", hosted.host.port)


def test_a_clone_done_without_a_shared_connection_does_not_wait_for_one(
    scouting_platform: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    # The connect timeout is far longer than the test may take: only the clone's end can
    # release the scout's wait for a socket that never comes.
    settings = scouting_platform.settings.model_copy(update={"ssh_connect_timeout": 3600})
    key = granted_key(hosted.host, "other", "no-master")
    url = parse_ssh_url(hosted.other.url())
    ended = threading.Event()

    def clone_without_sharing() -> None:
        with open_remote(
            settings,
            url,
            key,
            trusted=_trusted(scouting_platform, hosted),
            runner=scouting_platform.runner,
        ) as remote:
            unshared = dataclasses.replace(remote, control_path=tmp_path / "never-bound")

            def index(repository: Path) -> IndexResult:
                raise AssertionError("no shared connection: no scout")

            with Scout(unshared, _mirror_in(tmp_path, "5"), index, settings=settings) as scout:
                scout.observe(FetchProgress("Receiving objects", done=5, total=5))
        ended.set()

    worker = threading.Thread(target=clone_without_sharing, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert ended.is_set()
