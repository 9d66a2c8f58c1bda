"""The scout of a first fetch: the commits fetched alone (a partial clone) and indexed while
the clone runs, over the clone's own SSH connection, and forgotten whenever it cannot help.

The threshold is set to one object here so the small hosted repositories get a scout; the
default (tens of thousands of objects) is what the benchmark exercises."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from platformkit import CountingProxy, HostedRepos, Platform, granted_key

from repolink import gitcli, hostkeys
from repolink.hostkeys import TrustedHostKey
from repolink.platform import mirror
from repolink.platform.commits import list_commits
from repolink.platform.connections import connection_info
from repolink.platform.index import IndexResult
from repolink.platform.progress import FetchProgress
from repolink.platform.remote import open_remote
from repolink.platform.scout import Scout
from repolink.settings import Settings
from repolink.store import Store
from repolink.urls import parse_ssh_url


@pytest.fixture
def scouting_platform(tmp_path: Path, hosted: HostedRepos) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path / "platform", git_timeout=120, ssh_connect_timeout=10, scout_min_objects=1
    )
    with Store.open(settings) as store:
        kit = Platform(settings, store, hosted.host)
        kit.trust_host()
        yield kit


@pytest.fixture
def platform_runs(
    monkeypatch: pytest.MonkeyPatch, scouting_platform: Platform
) -> list[tuple[list[str], dict[str, str]]]:
    """The argv and environment of every process the platform starts through gitcli.run (the
    runs are real; the host's own git in this process is left out)."""
    seen: list[tuple[list[str], dict[str, str]]] = []
    real: Callable[..., gitcli.CompletedRun] = gitcli.run
    data_dir = str(scouting_platform.settings.resolved_data_dir)

    def spy(argv: Sequence[str], **kwargs: Any) -> gitcli.CompletedRun:
        env = kwargs["env"]
        if "GIT_SSH_COMMAND" in env or env["HOME"].startswith(data_dir):
            seen.append((list(argv), dict(env)))
        return real(argv, **kwargs)

    monkeypatch.setattr(gitcli, "run", spy)
    return seen


def _index_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """What each index run logged, and the thread it ran on (the scout's is its own)."""
    return [
        (r.threadName or "", r.getMessage())
        for r in caplog.records
        if r.name == "repolink.platform.index"
    ]


def _listed(platform: Platform, project: str) -> list[str]:
    with platform.store.session() as session:
        page = list_commits(session, platform.settings, project, limit=500)
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
    assert key_dir.name.startswith(gitcli.KEY_DIR_PREFIX) and not key_dir.exists()
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
    path = mirror.mirror_path(scouting_platform.settings, outcome.connection.id)
    assert not mirror.scout_path(path).exists()
    # The mirror is a full clone, not the partial one: every tree and blob is there.
    subprocess.run(["git", f"--git-dir={path}", "fsck", "--connectivity-only"], check=True)
    with scouting_platform.store.session() as session:
        assert connection_info(session, "scouted").state == "ok"


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
    path = mirror.mirror_path(scouting_platform.settings, outcome.connection.id)
    assert not mirror.scout_path(path).exists()


def test_a_small_history_gets_no_scout(
    platform: Platform, hosted: HostedRepos, monkeypatch: pytest.MonkeyPatch
) -> None:
    argvs: list[Sequence[str]] = []
    real: Callable[..., gitcli.CompletedRun] = gitcli.run

    def spy(argv: Sequence[str], **kwargs: Any) -> gitcli.CompletedRun:
        argvs.append(argv)
        return real(argv, **kwargs)

    monkeypatch.setattr(gitcli, "run", spy)
    assert platform.settings.scout_min_objects > 1000
    outcome = platform.connect("small", hosted.other.url(), granted_key(hosted.host, "other", "s"))

    assert outcome.error is None, outcome.error
    assert not [argv for argv in argvs if "--filter=tree:0" in argv]


def test_a_failing_scout_is_forgotten_and_its_directory_removed(
    scouting_platform: Platform,
    hosted: HostedRepos,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = scouting_platform.settings
    caplog.set_level(logging.INFO, logger="repolink.platform.scout")
    key = granted_key(hosted.host, "other", "failing-scout")
    path = tmp_path / "mirrors" / f"{'2' * 32}.git"
    path.parent.mkdir()
    seen: list[Path] = []

    def broken_index(repository: Path) -> IndexResult:
        seen.append(repository)
        assert (repository / "HEAD").is_file()  # the scout's partial clone is there to index
        raise RuntimeError("the index broke")

    with (
        open_remote(
            settings,
            parse_ssh_url(hosted.other.url()),
            key,
            trusted=_trusted(scouting_platform, hosted),
        ) as remote,
        Scout(remote, path, broken_index, settings=settings) as scout,
    ):
        # No shared connection is up until ssh connects: make one, as the clone would.
        done = remote.run(gitcli.git_argv("ls-remote", "--", remote.url.git_url))
        assert done.ok, done.stderr
        scout.observe(FetchProgress("Receiving objects", done=1, total=1))

    assert seen == [mirror.scout_path(path)]
    assert scout.result is None and scout.new_commits == 0
    assert not mirror.scout_path(path).exists()
    assert any("gave up" in r.getMessage() for r in caplog.records)


def _trusted(platform: Platform, hosted: HostedRepos) -> list[TrustedHostKey]:
    with platform.store.session() as session:
        return hostkeys.trusted_keys(session, "127.0.0.1", hosted.host.port)
