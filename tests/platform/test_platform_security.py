"""The security rules (architecture.md#security) for fetches, each proven against real ssh,
git and the built-in host."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.git.keyfiles import KEY_DIR_PREFIX, private_key_file
from repolink.git.mirrors import mirror_path
from repolink.git.progress import INDEXING, FetchProgress
from repolink.keys import PrivateKey, generate_key, parse_private_key
from repolink.platform.fetch import FetchResult
from support.hostkit import KeyPair
from support.platformkit import WORKSPACE, HostedRepo, HostedRepos, Platform, granted_key
from support.postgres import database_env

REPOLINK = [sys.executable, "-m", "repolink"]


@pytest.fixture
def accepted(hosted: HostedRepos) -> tuple[KeyPair, PrivateKey]:
    """A key pair the host accepts for team/app — one the fetch must never pick up."""
    pair = hosted.host.key(f"accepted-{time.monotonic_ns()}")
    hosted.host.service.add_access_key(WORKSPACE, "app", pair.public_line, label="accepted")
    return pair, parse_private_key(pair.private_path.read_bytes()).key


@pytest.fixture
def agent(tmp_path: Path, accepted: tuple[KeyPair, PrivateKey]) -> Iterator[dict[str, str]]:
    """A real ssh-agent holding the accepted key."""
    socket_path = tmp_path / "agent.sock"
    started = subprocess.run(
        ["ssh-agent", "-a", str(socket_path), "-s"], capture_output=True, text=True, check=True
    )
    pid = int(started.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    env = {"SSH_AUTH_SOCK": str(socket_path), "SSH_AGENT_PID": str(pid)}
    try:
        subprocess.run(
            ["ssh-add", str(accepted[0].private_path)],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        yield env
    finally:
        os.kill(pid, signal.SIGTERM)


def _accepted_by_host(hosted: HostedRepos, env: dict[str, str], home: Path) -> bool:
    """Whether plain ssh, with the caller's environment as given, gets into team/app."""
    home.mkdir(parents=True, exist_ok=True)
    ssh = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={hosted.host.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
    ]
    done = subprocess.run(
        ["git", "ls-remote", "--", hosted.app.url()],
        env={**os.environ, "HOME": str(home), "GIT_SSH_COMMAND": shlex.join(ssh), **env},
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    return done.returncode == 0


def test_an_agent_with_an_accepted_key_is_not_used(
    platform: Platform,
    hosted: HostedRepos,
    agent: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The agent's key really opens the repository for a plain ssh …
    assert _accepted_by_host(hosted, agent, tmp_path / "plain-home")
    for name, value in agent.items():
        monkeypatch.setenv(name, value)

    outcome = platform.connect("agent", hosted.app.url(), generate_key())

    # … but the fetch offers its deploy key only.
    assert outcome.error is not None and outcome.error.code == "auth_failed"


def test_callers_ssh_command_ssh_config_and_global_git_config_have_no_effect(
    platform: Platform,
    hosted: HostedRepos,
    accepted: tuple[KeyPair, PrivateKey],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pair = accepted[0]
    marker = tmp_path / "used"
    spy = tmp_path / "spy.sh"
    spy.write_text(f'#!/bin/sh\ntouch {shlex.quote(str(marker))}\nexec ssh "$@"\n')
    spy.chmod(0o755)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host *\n  IdentityFile {pair.private_path}\n  ProxyCommand sh -c 'touch {marker}'\n"
    )
    gitconfig = tmp_path / "gitconfig"
    other = hosted.other.url()
    gitconfig.write_text(
        f'[url "{other}"]\n\tinsteadOf = {hosted.app.url()}\n'
        f"[core]\n\tsshCommand = {spy} -i {pair.private_path}\n"
    )
    caller = {
        "HOME": str(home),
        "GIT_SSH_COMMAND": f"{spy} -i {pair.private_path} -o StrictHostKeyChecking=no",
        "GIT_SSH": str(spy),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_SYSTEM": str(gitconfig),
        "GIT_DIR": str(tmp_path / "elsewhere.git"),
    }
    for name, value in caller.items():
        monkeypatch.setenv(name, value)

    # With a key the host does not know, only the caller's settings could make this work.
    refused = platform.connect("env-wrong", hosted.app.url(), generate_key())
    assert refused.error is not None and refused.error.code == "auth_failed"
    # With the right key, the fetch goes to the URL given, not where insteadOf points.
    fetched = platform.connect("env-right", hosted.app.url(), granted_key(hosted.host, "app", "e"))
    assert fetched.error is None
    assert fetched.fetch is not None
    assert fetched.fetch.new_commits == len(hosted.app.host_commits())
    assert not marker.exists()


def _secret_parts(key: PrivateKey) -> list[str]:
    body = "".join(
        line for line in key.to_openssh().decode().splitlines() if not line.startswith("-----")
    )
    public = key.public_key.openssh_line()
    chunks = [body[i : i + 20] for i in range(0, len(body) - 20, 20)]
    return [chunk for chunk in chunks if chunk not in public]


def test_no_key_material_in_any_log_record(
    platform: Platform, hosted: HostedRepos, caplog: pytest.LogCaptureFixture
) -> None:
    good = granted_key(hosted.host, "app", "logged")
    bad = generate_key()
    with caplog.at_level(logging.DEBUG):
        assert platform.connect("logs-ok", hosted.app.url(), good).error is None
        assert platform.connect("logs-bad", hosted.app.url(), bad).error is not None
        platform.fetch("logs-ok")

    assert caplog.records, "nothing was logged at all"
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    everything = "\n".join(texts)
    assert "PRIVATE KEY" not in everything
    for key in (good, bad):
        leaked = [part for part in _secret_parts(key) if part in everything]
        assert leaked == []


def test_concurrent_fetches_of_one_project_take_turns(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.project("turns")
    key = granted_key(hosted.host, "app", "turns")
    events: list[str] = []
    first_inside = threading.Event()
    second_waiting = threading.Event()
    results: dict[str, object] = {}

    def first_progress(step: FetchProgress) -> None:
        # Indexing runs under the mirror lock: hold it until the second fetch is waiting.
        if step.phase == INDEXING and not first_inside.is_set():
            events.append("first holds the lock")
            first_inside.set()
            assert second_waiting.wait(30), "the second fetch never waited for the lock"

    def first() -> None:
        results["first"] = platform.app.connections.connect(
            "turns", hosted.app.url(), key=key, on_progress=first_progress
        )
        events.append("first done")

    def second_waits() -> None:
        events.append("second waits")
        second_waiting.set()

    def second() -> None:
        assert first_inside.wait(30)
        results["second"] = platform.app.fetches.fetch_project("turns", on_lock_wait=second_waits)
        events.append("second done")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert events == ["first holds the lock", "second waits", "first done", "second done"]
    first_result = results["first"].fetch  # type: ignore[attr-defined]
    second_result = results["second"]
    assert isinstance(second_result, FetchResult)
    assert not first_result.waited_for_lock and second_result.waited_for_lock
    assert first_result.new_commits == len(hosted.app.host_commits())
    assert second_result.skipped and second_result.new_commits == 0


# -- SIGKILL half-way -------------------------------------------------------------------------


@pytest.fixture
def big_repo(hosted: HostedRepos) -> HostedRepo:
    """A repository whose fetch takes a while: hundreds of incompressible blobs (~40 MB),
    so git receives one pack through index-pack rather than loose objects."""
    service = hosted.host.service
    service.create_repository(WORKSPACE, "big")
    client = hosted.app.client
    source = hosted.host.root / "source-big"
    env = client.env()
    subprocess.run(["git", "init", "-q", "-b", "main", str(source)], check=True, env=env)
    subprocess.run(["git", "config", "core.compression", "0"], cwd=source, check=True, env=env)
    for number in range(2):
        directory = source / f"part{number}"
        directory.mkdir()
        for index in range(80):
            (directory / f"blob{index}.bin").write_bytes(os.urandom(256 * 1024))
        for args in (["add", "-A"], ["commit", "-q", "-m", f"big {number}"]):
            subprocess.run(["git", *args], cwd=source, env=env, check=True)
    repo = HostedRepo(hosted.host, "big", client, source)
    repo.push("main:main")
    return repo


@pytest.mark.slow
def test_a_fetch_killed_half_way_is_followed_by_a_good_fetch(
    platform: Platform, hosted: HostedRepos, big_repo: HostedRepo, tmp_path: Path
) -> None:
    key = generate_key()
    outcome = platform.connect("killed", big_repo.url(), key)
    assert outcome.error is not None and outcome.error.code == "auth_failed"
    hosted.host.service.add_access_key(
        WORKSPACE, "big", key.public_key.openssh_line(), label="killed"
    )
    mirror = mirror_path(platform.settings, outcome.connection.id)
    run_tmp = tmp_path / "run-tmp"
    run_tmp.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")},
        "HOME": str(tmp_path / "home"),
        "REPOLINK_DATA_DIR": str(platform.settings.resolved_data_dir),
        **database_env(platform.settings.data_dir),
        "TMPDIR": str(run_tmp),
    }
    child = subprocess.Popen(
        [*REPOLINK, "fetch", "killed"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((mirror / "objects" / "pack").glob("tmp_pack_*")):
            assert child.poll() is None, "the fetch ended before it was caught receiving"
            assert time.monotonic() < deadline, "the fetch never started receiving"
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)  # repolink only; git and ssh are left behind
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()

    # The killed run could not remove its key directory; the next run that writes a key
    # into the same temporary directory wipes it.
    assert list(run_tmp.glob(f"{KEY_DIR_PREFIX}{child.pid}-*"))
    with private_key_file(b"unrelated\n", base_dir=run_tmp):
        pass
    assert list(run_tmp.glob(f"{KEY_DIR_PREFIX}*")) == []

    result = platform.fetch("killed")

    # Whatever the killed run left (a git fetch still running, a half-received pack, lock
    # files, an unindexed mirror), the next run ends with everything fetched and indexed.
    assert result.new_commits == 2
    assert platform.app.connections.connection_info("killed").state == "ok"
    fsck = subprocess.run(
        ["git", f"--git-dir={mirror}", "fsck", "--connectivity-only"],
        capture_output=True,
        text=True,
    )
    assert fsck.returncode == 0, fsck.stderr
    assert list(mirror.rglob("*.lock")) == []
    assert list((mirror / "objects" / "pack").glob("tmp_*")) == []
