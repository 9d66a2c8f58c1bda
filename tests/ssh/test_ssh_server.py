"""The embedded SSH server, driven by the real git and OpenSSH clients over loopback."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from repolink.host.events import RefUpdate
from support.hostkit import (
    EmbeddedHost,
    GitClient,
    KeyPair,
    LoopThread,
    make_source_repository,
    start_embedded_host,
)

REPO = "team/app"
OTHER_REPO = "team/other"
NOT_FOUND = "repository team/app not found"
READ_ONLY = "this access key is read-only"
DENIED = "Permission denied (publickey)"


@dataclass
class World:
    host: EmbeddedHost
    keys: dict[str, KeyPair]
    source: Path
    commits: list[str]

    def client(self, key_name: str) -> GitClient:
        return self.host.client(self.keys[key_name], name=key_name)

    def refs(self, slug: str = "app") -> dict[str, str]:
        info = self.host.service.get_repository("team", slug)
        storage_path = self.host.service.repository_path(info)
        out = subprocess.run(
            [
                "git",
                f"--git-dir={storage_path}",
                "for-each-ref",
                "--format=%(refname) %(objectname)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return dict(line.split() for line in out.splitlines())


@pytest.fixture(scope="module")
def world(embedded_host: EmbeddedHost) -> World:
    service = embedded_host.service
    service.create_repository("team", "app")
    service.create_repository("team", "other")
    names = ["account", "read_only", "writable", "unknown", "removed", "other_repo", "tracked"]
    keys = {name: embedded_host.key(name) for name in names}
    service.add_account_key("team", keys["account"].public_line, label="developer")
    service.add_access_key("team", "app", keys["read_only"].public_line, label="ci")
    service.add_access_key(
        "team", "app", keys["writable"].public_line, label="deploy", writable=True
    )
    removed = service.add_access_key("team", "app", keys["removed"].public_line, label="old")
    service.remove_access_key("team", "app", removed.id)
    service.add_access_key("team", "other", keys["other_repo"].public_line, label="other")
    service.add_access_key("team", "app", keys["tracked"].public_line, label="tracked")

    account = embedded_host.client(keys["account"], name="account")
    source = embedded_host.root / "source"
    commits = make_source_repository(source, account.env(), commits=2)
    pushed = account.git("push", account.url("team/app.git"), "main:main", cwd=source)
    assert pushed.returncode == 0, pushed.stderr
    return World(embedded_host, keys, source, commits)


# -- clone, fetch, push -----------------------------------------------------------------------


def test_clone_fetch_and_push_with_protocol_v2_and_v0(world: World, tmp_path: Path) -> None:
    client = world.client("account")
    clone = tmp_path / "clone"
    cloned = client.git("-c", "protocol.version=2", "clone", client.url("team/app.git"), str(clone))
    assert cloned.returncode == 0, cloned.stderr
    assert (clone / "file.txt").read_text() == "content 1\n"

    # A new commit pushed from elsewhere arrives through fetch, in either protocol version.
    other = tmp_path / "other"
    assert client.git("clone", "-q", client.url("team/app.git"), str(other)).returncode == 0
    (other / "new.txt").write_text("new\n")
    client.git("add", "new.txt", cwd=other)
    client.git("commit", "-q", "-m", "new", cwd=other)
    pushed = client.git("push", "origin", "main", cwd=other)
    assert pushed.returncode == 0, pushed.stderr
    new_head = client.git("rev-parse", "HEAD", cwd=other).stdout.strip()

    for version in ("0", "2"):
        client.git("update-ref", "refs/remotes/origin/main", world.commits[-1], cwd=clone)
        fetched = subprocess.run(
            ["git", "-c", f"protocol.version={version}", "fetch", "origin"],
            cwd=clone,
            env={**client.env(), "GIT_TRACE_PACKET": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert fetched.returncode == 0, fetched.stderr
        # The server really spoke the version asked for (v2 needs GIT_PROTOCOL to get through).
        assert ("< version 2" in fetched.stderr) is (version == "2")
        head = client.git("rev-parse", "refs/remotes/origin/main", cwd=clone).stdout.strip()
        assert head == new_head


def test_push_reports_ref_updates(world: World, tmp_path: Path) -> None:
    client = world.client("writable")
    before = len(world.host.pushes)
    pushed = client.git(
        "push", client.url(REPO), f"{world.commits[0]}:refs/heads/feature", cwd=world.source
    )
    assert pushed.returncode == 0, pushed.stderr
    world.host.wait_for_pushes(before + 1)
    repository, updates = world.host.pushes[before]
    assert repository.full_name == REPO
    assert updates == [RefUpdate("refs/heads/feature", None, world.commits[0])]

    deleted = client.git("push", client.url(REPO), ":refs/heads/feature", cwd=world.source)
    assert deleted.returncode == 0, deleted.stderr
    world.host.wait_for_pushes(before + 2)
    assert world.host.pushes[before + 1][1] == [
        RefUpdate("refs/heads/feature", world.commits[0], None)
    ]


def test_upload_archive_serves_a_tree(world: World, tmp_path: Path) -> None:
    client = world.client("read_only")
    archive = tmp_path / "app.tar"
    result = client.git("archive", f"--remote={client.url(REPO)}", "-o", str(archive), "main")
    assert result.returncode == 0, result.stderr
    listing = subprocess.run(
        ["tar", "-tf", str(archive)], capture_output=True, text=True, check=True
    )
    assert "file.txt" in listing.stdout.split()


# A flush packet ends a protocol v0 conversation right after the ref advertisement.
FLUSH = "0000"


@pytest.mark.parametrize("spelling", ["team/app.git", "team/app", "/team/app.git", "/team/app"])
def test_accepted_path_spellings(world: World, spelling: str) -> None:
    result = world.client("read_only").ssh(f"git-upload-pack '{spelling}'", input=FLUSH)
    assert result.returncode == 0, result.stderr
    assert "refs/heads/main" in result.stdout


def test_two_word_git_command_is_accepted(world: World) -> None:
    result = world.client("read_only").ssh("git upload-pack 'team/app.git'", input=FLUSH)
    assert result.returncode == 0, result.stderr
    assert "refs/heads/main" in result.stdout


# -- the key × repository × verb matrix -------------------------------------------------------

MATRIX = [
    ("account", "read", "ok"),
    ("account", "write", "ok"),
    ("read_only", "read", "ok"),
    ("read_only", "write", "read_only"),
    ("writable", "read", "ok"),
    ("writable", "write", "ok"),
    ("unknown", "read", "denied"),
    ("unknown", "write", "denied"),
    ("removed", "read", "denied"),
    ("removed", "write", "denied"),
    ("other_repo", "read", "not_found"),
    ("other_repo", "write", "not_found"),
]


@pytest.mark.parametrize(("key_name", "verb", "outcome"), MATRIX)
def test_key_repository_verb_matrix(world: World, key_name: str, verb: str, outcome: str) -> None:
    client = world.client(key_name)
    branch = f"refs/heads/matrix-{key_name}"
    if verb == "read":
        result = client.git("ls-remote", client.url(REPO))
    else:
        result = client.git(
            "push", client.url(REPO), f"{world.commits[0]}:{branch}", cwd=world.source
        )

    if outcome == "ok":
        assert result.returncode == 0, result.stderr
        if verb == "read":
            assert f"{world.refs()['refs/heads/main']}\trefs/heads/main" in result.stdout
        else:
            assert world.refs()[branch] == world.commits[0]
        return
    assert result.returncode != 0
    expected = {"denied": DENIED, "read_only": READ_ONLY, "not_found": NOT_FOUND}[outcome]
    assert expected in result.stderr
    assert branch not in world.refs()


def test_no_grant_reads_exactly_like_a_missing_repository(world: World) -> None:
    client = world.client("other_repo")
    for verb in ("git-upload-pack", "git-receive-pack"):
        not_granted = client.ssh(f"{verb} 'team/app.git'")
        missing = client.ssh(f"{verb} 'team/ghost.git'")
        assert not_granted.returncode == missing.returncode == 1
        assert not_granted.stdout == missing.stdout == ""
        assert not_granted.stderr.replace("team/app", "X") == missing.stderr.replace(
            "team/ghost", "X"
        )
        assert not_granted.stderr.count("\n") == 1


def test_removing_a_key_refuses_its_next_connection(world: World) -> None:
    key = world.host.key("short_lived")
    added = world.host.service.add_access_key("team", "app", key.public_line, label="short")
    client = world.host.client(key, name="short_lived")
    assert client.git("ls-remote", client.url(REPO)).returncode == 0
    world.host.service.remove_access_key("team", "app", added.id)
    refused = client.git("ls-remote", client.url(REPO))
    assert refused.returncode != 0
    assert DENIED in refused.stderr


def test_wrong_user_name_is_refused_like_an_unknown_key(world: World) -> None:
    result = world.client("account").with_user("other").ssh("git-upload-pack 'team/app.git'")
    assert result.returncode == 255
    assert DENIED in result.stderr


def test_read_only_key_can_be_made_writable(world: World) -> None:
    key = world.host.key("promoted")
    added = world.host.service.add_access_key("team", "other", key.public_line, label="promoted")
    client = world.host.client(key, name="promoted")
    url = client.url(OTHER_REPO)
    refused = client.git("push", url, "main:main", cwd=world.source)
    assert READ_ONLY in refused.stderr
    assert "repolink host access-key update team/other" in refused.stderr
    world.host.service.update_access_key("team", "other", added.id, writable=True)
    pushed = client.git("push", url, "main:main", cwd=world.source)
    assert pushed.returncode == 0, pushed.stderr
    assert world.refs("other")["refs/heads/main"] == world.commits[-1]


def test_last_used_is_set_on_use_and_not_rewritten_within_a_minute(world: World) -> None:
    client = world.client("tracked")
    [key] = [k for k in world.host.service.list_access_keys("team", "app") if k.label == "tracked"]
    assert key.last_used is None
    assert client.git("ls-remote", client.url(REPO)).returncode == 0
    first = world.host.service.get_access_key("team", "app", key.id).last_used
    assert first is not None
    assert client.git("ls-remote", client.url(REPO)).returncode == 0
    assert world.host.service.get_access_key("team", "app", key.id).last_used == first


# -- refused requests -------------------------------------------------------------------------

REFUSED_COMMANDS = [
    "git-upload-pack '--help'",
    "git-upload-pack --help",
    "git-upload-pack '../other.git'",
    "git-upload-pack 'team/../team/app.git'",
    "git-upload-pack 'team/app.git; id'",
    "git-upload-pack team/app.git; id",
    "git-upload-pack '/etc/passwd'",
    "git-upload-pack '/srv/git/team/app.git'",
    "git-upload-pack 'team/app.git' 'team/other.git'",
    "git-upload-pack",
    "git-receive-pack '-c core.hooksPath=/tmp team/app.git'",
    "bash",
    "ls -la",
    "sh -c 'git-upload-pack team/app.git'",
    "git-upload-pack 'team/app.git\nid'",
    'git-upload-pack "$(id)"',
    "",
]


@pytest.mark.parametrize("command", REFUSED_COMMANDS)
def test_refused_commands(world: World, command: str) -> None:
    result = world.client("account").ssh(command, "RequestTTY=no")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("repolink: "), result.stderr


def test_huge_commands_are_refused_at_once_and_starve_no_one(world: World) -> None:
    # 240 KB of command took the parser about a second; a few of them at once made a
    # bystander's ls-remote wait for many seconds. An argument is at most 128 KB, so the
    # command travels as two (ssh joins them with a space).
    attacker = world.client("account")
    argv = [*attacker.ssh_argv("RequestTTY=no"), "-p", str(attacker.port), "git@127.0.0.1"]
    half = "git-upload-pack" + " 'team/app.git'" * 8000
    attacks = [
        subprocess.Popen(
            [*argv, half, half],
            env=attacker.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(12)
    ]
    try:
        bystander = world.client("read_only")
        listed = bystander.git("ls-remote", bystander.url(REPO))
        results = [attack.communicate(timeout=60) for attack in attacks]
    finally:
        for attack in attacks:
            attack.kill()
    assert listed.returncode == 0, listed.stderr
    assert "refs/heads/main" in listed.stdout
    for attack, (stdout, stderr) in zip(attacks, results, strict=True):
        assert attack.returncode == 1
        assert stdout == ""
        # Refused by its length, before shlex parses it: the refusal that costs no parsing.
        assert stderr.startswith("repolink: the command is longer than 4096 characters"), stderr


def test_a_command_cannot_forge_or_smuggle_log_lines(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # asyncssh logs a client's command as sent: a newline in it wrote a second, forged line,
    # a NUL went in raw. OpenSSH cannot send a NUL; asyncssh, as a client, can.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="asyncssh")
    forged = "git-upload-pack 'team/app.git'\n2026-01-01 INFO repolink: forged\x00"
    client = world.client("account")
    refused = client.ssh(forged.removesuffix("\x00"), "RequestTTY=no")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr

    async def send_with_asyncssh() -> int | None:
        async with asyncssh.connect(
            "127.0.0.1",
            world.host.port,
            username="git",
            client_keys=[str(client.key.private_path)],
            known_hosts=str(world.host.known_hosts),
            agent_path=None,
            config=None,
        ) as connection:
            return (await connection.run(forged)).exit_status

    assert asyncio.run(send_with_asyncssh()) == 1

    messages = [record.getMessage() for record in caplog.records]
    assert all("\n" not in message and "\x00" not in message for message in messages), messages
    escaped = "git-upload-pack 'team/app.git'\\n2026-01-01 INFO repolink: forged"
    commands = [message for message in messages if "Command: " in message]
    assert any(message.endswith(escaped) for message in commands), commands
    assert any(message.endswith(escaped + "\\x00") for message in commands), commands


def test_shell_request_is_refused(world: World) -> None:
    result = world.client("account").ssh(None, "RequestTTY=no")
    assert result.returncode == 1
    assert "repolink: this host serves git only" in result.stderr


def test_client_environment_never_reaches_git(world: World) -> None:
    # If LD_PRELOAD reached the git process, the dynamic loader would complain on its stderr
    # (forwarded to us) that it cannot preload the file; GIT_TRACE would print trace lines.
    client = world.client("read_only")
    result = client.git(
        "ls-remote",
        client.url(REPO),
        ssh_options=(
            "SetEnv=LD_PRELOAD=/nonexistent/repolink-test.so GIT_TRACE=1 GIT_TRACE_PACKET=1",
        ),
    )
    assert result.returncode == 0, result.stderr
    assert "repolink-test.so" not in result.stderr
    assert "trace:" not in result.stderr and "packet:" not in result.stderr
    assert world.refs()["refs/heads/main"] in result.stdout


def test_pty_request_is_refused(world: World) -> None:
    result = world.client("read_only").ssh("git-upload-pack 'team/app.git'", "RequestTTY=force")
    assert "PTY allocation request failed" in result.stderr


@pytest.mark.parametrize("subsystem", ["sftp", "git"])
def test_subsystem_requests_are_refused(world: World, subsystem: str) -> None:
    client = world.client("account")
    argv = [*client.ssh_argv(), "-p", str(client.port), "-s", "git@127.0.0.1", subsystem]
    result = subprocess.run(
        argv, env=client.env(), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )
    assert result.returncode != 0
    assert "subsystem" in result.stderr.lower()


def test_port_forwarding_is_refused(world: World) -> None:
    client = world.client("account")
    local = client.ssh(None, "ClearAllForwardings=no", "RequestTTY=no")
    assert local.returncode == 1  # sanity: the session itself works
    argv = [
        *client.ssh_argv(),
        "-p",
        str(client.port),
        "-W",
        f"127.0.0.1:{client.port}",
        "git@127.0.0.1",
    ]
    forwarded = subprocess.run(
        argv, env=client.env(), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )
    assert forwarded.returncode != 0
    assert "open failed" in forwarded.stderr
    remote = client.ssh(
        "git-upload-pack 'team/app.git'",
        "ExitOnForwardFailure=yes",
        "RemoteForward=127.0.0.1:0 127.0.0.1:9",
    )
    assert remote.returncode != 0
    assert "forwarding failed" in remote.stderr


def test_transport_is_aes_and_never_compressed(world: World) -> None:
    # chacha20-poly1305 costs asyncssh several cipher objects per packet, and compressing packs
    # (compressed already) only burns the server's CPU: neither is offered, even when asked for.
    client = world.client("read_only")
    result = client.ssh("git-upload-pack 'team/app.git'", "Compression=yes", "LogLevel=DEBUG1")
    assert "refs/heads/main" in result.stdout, result.stderr  # the session really ran
    ciphers = re.findall(r"kex: (?:server->client|client->server) cipher: (\S+)", result.stderr)
    assert len(ciphers) == 2 and all(name.startswith("aes") for name in ciphers), result.stderr
    assert result.stderr.count("compression: none") == 2, result.stderr
    assert "Enabling compression" not in result.stderr

    chacha_only = client.ssh(
        "git-upload-pack 'team/app.git'", "Ciphers=chacha20-poly1305@openssh.com"
    )
    assert chacha_only.returncode != 0
    assert "no matching cipher found" in chacha_only.stderr


def _git_processes_on(path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(path).encode() in argv:
                pids.append(int(entry.name))
    return pids


def test_git_is_stopped_when_the_client_goes_away(world: World) -> None:
    client = world.client("account")
    info = world.host.service.get_repository("team", "app")
    path = world.host.service.repository_path(info)
    argv = [*client.ssh_argv(), "-p", str(client.port), "git@127.0.0.1"]
    ssh = subprocess.Popen(
        [*argv, "git-upload-pack 'team/app.git'"],
        env=client.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert ssh.stdout is not None
        assert ssh.stdout.readline()  # the advertisement: upload-pack now waits for us
        assert _git_processes_on(path)
    finally:
        ssh.kill()
        ssh.wait()
    deadline = time.monotonic() + 15
    while _git_processes_on(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _git_processes_on(path) == []


# -- host keys across restarts ----------------------------------------------------------------


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


def test_host_keys_survive_a_restart(tmp_path: Path, loop_thread: LoopThread) -> None:
    first, stop = start_embedded_host(tmp_path, loop_thread)
    port = first.port
    fingerprints = first.server.host_key_fingerprints
    known_hosts = first.known_hosts.read_text()
    first.service.create_repository("ws", "repo")
    key = first.key("person")
    first.service.add_account_key("ws", key.public_line, label="person")
    stop()

    second, stop = start_embedded_host(tmp_path, loop_thread, port=port)
    try:
        assert second.server.host_key_fingerprints == fingerprints
        # The known_hosts file written against the first run still verifies the second.
        second.known_hosts.write_text(known_hosts)
        client = second.client(key)
        result = client.git("ls-remote", client.url("ws/repo.git"))
        assert result.returncode == 0, result.stderr
    finally:
        stop()


# -- a client that stops reading and dies mid-pack ----------------------------------------------


def test_a_client_that_stops_reading_mid_pack_leaves_nothing_open_behind(tmp_path: Path) -> None:
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path, loop)
    try:
        host.service.create_repository("team", "big")
        account = host.key("account")
        host.service.add_account_key("team", account.public_line, label="developer")
        client = host.client(account, name="account")
        source = tmp_path / "big-source"
        make_source_repository(source, client.env(), commits=1)
        # Several MiB that do not compress: more than every buffer between git and the client.
        (source / "noise.bin").write_bytes(os.urandom(6 * 1024 * 1024))
        for args in (("add", "noise.bin"), ("commit", "-q", "-m", "noise")):
            assert client.git(*args, cwd=source).returncode == 0
        pushed = client.git("push", client.url("team/big.git"), "main:main", cwd=source)
        assert pushed.returncode == 0, pushed.stderr
        path = host.service.repository_path(host.service.get_repository("team", "big"))

        cloning = subprocess.Popen(
            ["git", "clone", "--bare", "-q", client.url("team/big.git"), str(tmp_path / "c.git")],
            env=client.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while not _git_processes_on(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(cloning.pid, signal.SIGSTOP)  # the client stops reading …
        time.sleep(1.0)  # … while the host's buffers fill up …
        os.killpg(cloning.pid, signal.SIGKILL)  # … and goes away
        cloning.wait()
        while _git_processes_on(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _git_processes_on(path) == []
    finally:
        stop()
        loop.stop()

    # Whatever the host's loop left open complains when collected, now that the loop is closed.
    complaints: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: complaints.append(repr(unraisable.exc_value))
    try:
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert complaints == []
