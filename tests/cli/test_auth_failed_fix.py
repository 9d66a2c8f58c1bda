"""The ``auth_failed`` fix works as printed (issue 10 §1.9): for a repository of repolink's own
host it is one command line — ``repolink repo show P --public-key | repolink host access-key
add WS/SLUG - --label P`` — run here literally through a shell, after which the fetch works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.hints import command_wording
from support.clikit import CLI
from support.hostkit import LoopThread, start_embedded_host
from support.platformkit import WORKSPACE, HostedRepos, Platform, populate

PUBLIC_LINE = re.compile(r"^ssh-ed25519 AAAA\S+", re.MULTILINE)
PRINTED_COMMAND = re.compile(r"`(repolink repo show [^`]+)`")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedRepos]:
    """A built-in host whose data directory the platform's CLI uses too: one machine running
    both, as the printed command assumes."""
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path_factory.mktemp("shared"), loop)
    try:
        yield populate(host, commits=5)
    finally:
        stop()
        loop.stop()


@pytest.fixture
def cli(
    shared: HostedRepos,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> CLI:
    Platform(shared.host.settings, shared.host.store, shared.host).trust_host()
    (tmp_path / "home").mkdir()
    return CLI(shared.host.settings.data_dir, tmp_path / "home", capsys, monkeypatch)


def _shell(command: str, cli: CLI) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env.update(
        HOME=str(cli.home),
        REPOLINK_DATA_DIR=str(cli.data_dir),
        # `repolink` as a user's shell finds it: the installed script of this environment.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    # The command as a person pastes it into a shell: that is what is under test.
    return subprocess.run(  # noqa: S602
        command, shell=True, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_printed_fix_works_as_printed_and_then_the_fetch_does(
    cli: CLI, shared: HostedRepos
) -> None:
    assert cli("project", "create", "web").returncode == 0
    connect = cli("repo", "connect", "web", shared.app.url(), "--generate")
    assert connect.returncode == 1
    assert "error: auth_failed:" in connect.stderr
    public = PUBLIC_LINE.search(connect.stdout)
    assert public is not None

    printed = PRINTED_COMMAND.search(" ".join(connect.stderr.split()))
    assert printed is not None, connect.stderr
    command = printed.group(1)
    assert command == (
        f"repolink repo show web --public-key | repolink host access-key add {WORKSPACE}/app - "
        "--label web"
    )
    # The stored diagnosis (`repo show`) and a later fetch print the same command.
    assert command in " ".join(cli("repo", "show", "web").stdout.split())
    refetched = cli("fetch", "web")
    assert refetched.returncode == 1
    assert command in " ".join(refetched.stderr.split())

    ran = _shell(command, cli)

    assert ran.returncode == 0, ran.stderr
    assert "added access key" in ran.stdout and f"to {WORKSPACE}/app (read-only)" in ran.stdout
    fetched = cli("fetch", "web")
    assert fetched.returncode == 0, fetched.stderr
    assert (
        fetched.stdout.strip().splitlines()[-1] == f"{len(shared.app.host_commits())} new commits"
    )


def test_public_key_prints_only_the_public_line(cli: CLI, shared: HostedRepos) -> None:
    assert cli("project", "create", "api").returncode == 0
    connect = cli("repo", "connect", "api", shared.app.url(), "--generate")
    public = PUBLIC_LINE.search(connect.stdout)
    assert public is not None

    shown = cli("repo", "show", "api", "--public-key")

    assert shown.returncode == 0
    assert shown.stdout == public.group(0) + "\n"


@pytest.mark.parametrize(
    ("host", "path"),
    [("github.com", "team/app.git"), ("bitbucket.org", "team/app"), ("git.example", "a/b/c")],
)
def test_other_hosts_get_no_host_command(host: str, path: str) -> None:
    context = {
        "public_key": "ssh-ed25519 AAAAC3Nz",
        "remote_host": host,
        "remote_path": path,
        "project": "web",
    }
    wording = command_wording("auth_failed", None, context)
    assert wording is not None
    assert "repolink host" not in wording and "KEY.pub" not in wording
    assert "ssh-ed25519 AAAAC3Nz" in wording
