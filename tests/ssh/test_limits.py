"""What one peer may hold of the embedded SSH host (issue 10 §3.2, §3.3), with real clients:
raw TCP connections that never speak, the OpenSSH and git clients, and asyncssh as a client
that opens many sessions on one connection."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import asyncssh
import pytest

from repolink.settings import Settings
from repolink.ssh.limits import SSHLimits
from support.hostkit import EmbeddedHost, GitClient, KeyPair, LoopThread, start_embedded_host

REPO = "team/app"
UPLOAD_PACK = "git-upload-pack 'team/app.git'"
WAIT = 20.0

StartHost = Callable[..., EmbeddedHost]


def limits(**changes: float) -> SSHLimits:
    defaults = SSHLimits.from_settings(Settings())
    values = {**vars(defaults), **changes}
    return SSHLimits(**values)  # type: ignore[arg-type]


@pytest.fixture
def start_host(tmp_path: Path) -> Iterator[StartHost]:
    """An embedded host with the given limits, a repository with one commit, and keys."""
    loop = LoopThread()
    stops: list[Callable[[], None]] = []

    def start(**changes: float) -> EmbeddedHost:
        host, stop = start_embedded_host(tmp_path, loop, limits=limits(**changes))
        stops.append(stop)
        host.service.create_repository("team", "app")
        return host

    try:
        yield start
    finally:
        for stop in stops:
            stop()
        loop.stop()


def _account(host: EmbeddedHost, name: str) -> GitClient:
    key = host.key(name)
    host.service.add_account_key("team", key.public_line, label=name)
    return host.client(key, name=name)


def _connect(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT, source_address=(source, 0))


def _greeting(sock: socket.socket) -> bytes:
    """What the server says first: its SSH version line, or nothing when it closed at once."""
    try:
        return sock.recv(256)
    except ConnectionResetError:
        return b""


def _hold(stack: ExitStack, port: int, source: str) -> socket.socket:
    """A connection the server accepted and that never says a word; a slot freed by a closed
    connection is seen by the server a moment later, so a refusal is retried for a while."""
    deadline = time.monotonic() + WAIT
    while True:
        sock = _connect(port, source)
        if _greeting(sock).startswith(b"SSH-2.0-"):
            return stack.enter_context(sock)
        sock.close()
        assert time.monotonic() < deadline, f"no connection from {source} was accepted"
        time.sleep(0.05)


def _refused(port: int, source: str) -> bool:
    with _connect(port, source) as sock:
        return _greeting(sock) == b""


def test_unauthenticated_connections_are_capped_per_source_and_in_total(
    start_host: StartHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="repolink.ssh.server")
    host = start_host(max_startups=6, max_startups_per_source=3)
    bystander = _account(host, "bystander")
    with ExitStack() as stack:
        for _ in range(3):
            _hold(stack, host.port, "127.0.0.2")
        # One source at its cap: its next connection is closed before the SSH handshake …
        assert _refused(host.port, "127.0.0.2")
        # … while another source still connects, authenticates and lists refs.
        listed = bystander.git("ls-remote", bystander.url(REPO))
        assert listed.returncode == 0, listed.stderr

        for _ in range(3):
            _hold(stack, host.port, "127.0.0.3")
        assert _refused(host.port, "127.0.0.4")  # all sources together at their cap
    # The operator is told once (then at most once a minute), naming the setting.
    reports = [r.getMessage() for r in caplog.records if "closed on arrival" in r.getMessage()]
    assert len(reports) == 1, reports
    assert "REPOLINK_SSH_MAX_STARTUPS_PER_SOURCE reached (1 refused" in reports[0]
    # The held connections closed: their places are free again.
    with ExitStack() as stack:
        _hold(stack, host.port, "127.0.0.4")
        listed = bystander.git("ls-remote", bystander.url(REPO))
        assert listed.returncode == 0, listed.stderr


def test_an_authenticated_connection_leaves_the_unauthenticated_count(
    start_host: StartHost,
) -> None:
    host = start_host(max_startups=1, max_startups_per_source=1)
    client = _account(host, "client")

    async def while_logged_in() -> None:
        async with _login(host, client.key):
            # The only unauthenticated place is free again while this connection lives.
            with ExitStack() as stack:
                _hold(stack, host.port, "127.0.0.1")

    asyncio.run(while_logged_in())


def test_a_client_that_does_not_log_in_in_time_is_closed(start_host: StartHost) -> None:
    host = start_host(login_grace_time=0.5)
    with ExitStack() as stack:
        sock = _hold(stack, host.port, "127.0.0.2")
        sock.settimeout(WAIT)
        sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")  # and never a key exchange
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        # asyncssh sent its key exchange offer, then closed: the grace time had passed.
        assert received


def _login(host: EmbeddedHost, key: KeyPair) -> asyncssh.SSHClientConnection:
    """asyncssh as the client, logging in with ``key`` only."""
    return asyncssh.connect(
        "127.0.0.1",
        host.port,
        username="git",
        client_keys=[str(key.private_path)],
        known_hosts=str(host.known_hosts),
        agent_path=None,
        config=None,
    )


async def _started(process: asyncssh.SSHClientProcess[bytes]) -> bytes:
    """git runs: the first pkt-line length of its advertisement (an empty repository's is a
    flush-packet, with no newline), and git now waits for the client."""
    return await process.stdout.readexactly(4)


async def _finish(process: asyncssh.SSHClientProcess[bytes]) -> int | None:
    """Tell git the client wants nothing (a flush-packet, then the end of input); its exit."""
    process.stdin.write(b"0000")
    process.stdin.write_eof()
    return (await process.wait(timeout=WAIT)).exit_status


async def _session_refusal(host: EmbeddedHost, key: KeyPair, open_sessions: int) -> str:
    """Open ``open_sessions`` sessions running git on one connection, then one more: the
    reason the server gave for refusing it ("" if it did not)."""
    async with _login(host, key) as connection:
        processes = []
        for _ in range(open_sessions):
            process = await connection.create_process(UPLOAD_PACK, encoding=None)
            await _started(process)  # git runs and waits for the client
            processes.append(process)
        try:
            extra = await connection.create_process(UPLOAD_PACK, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            return exc.reason
        extra.close()
        return ""


def test_sessions_per_connection_are_capped(start_host: StartHost) -> None:
    host = start_host(max_sessions=3)
    client = _account(host, "client")
    reason = asyncio.run(_session_refusal(host, client.key, 3))
    assert reason.startswith("repolink: this connection has 3 sessions open"), reason
    assert "REPOLINK_SSH_MAX_SESSIONS" in reason
    # The sessions of a closed connection count no more; a new connection has its own.
    assert asyncio.run(_session_refusal(host, client.key, 2)) == ""


def test_git_processes_per_key_are_capped_over_all_its_connections(
    start_host: StartHost,
) -> None:
    host = start_host(max_processes_per_key=2)
    client, other = _account(host, "client"), _account(host, "other")

    async def attempt() -> tuple[int | None, str, int | None]:
        async with _login(host, client.key) as first, _login(host, client.key) as second:
            running = []
            for connection in (first, second):
                process = await connection.create_process(UPLOAD_PACK, encoding=None)
                await _started(process)
                running.append(process)
            refused = await first.run(UPLOAD_PACK, encoding=None, timeout=WAIT)
            # Another key is counted apart.
            async with _login(host, other.key) as third:
                process = await third.create_process(UPLOAD_PACK, encoding=None)
                assert await _started(process)
                other_status = await _finish(process)
            # One ends: the key may run another.
            assert await _finish(running[0]) == 0
            again = await second.create_process(UPLOAD_PACK, encoding=None)
            assert await _started(again)
            assert await _finish(again) == 0
            stderr = refused.stderr
            assert isinstance(stderr, bytes)
            return refused.exit_status, stderr.decode(), other_status

    status, stderr, other_status = asyncio.run(attempt())
    assert status == 1
    assert stderr.startswith("repolink: this key runs 2 git commands already"), stderr
    assert other_status == 0


def test_a_git_service_that_moves_no_data_is_stopped(start_host: StartHost) -> None:
    host = start_host(idle_timeout=1.0)
    client = _account(host, "client")

    async def stall() -> tuple[int | None, bytes]:
        async with _login(host, client.key) as connection:
            process = await connection.create_process(UPLOAD_PACK, encoding=None)
            await _started(process)
            # Never answer the advertisement: upload-pack would wait for hours.
            done = await process.wait(timeout=WAIT)
            assert isinstance(done.stderr, bytes)
            return done.exit_status, done.stderr

    status, stderr = asyncio.run(stall())
    assert status == 1
    assert b"repolink: the git command was stopped: no data moved for 1 seconds" in stderr
    assert b"REPOLINK_SSH_IDLE_TIMEOUT" in stderr


def test_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPOLINK_SSH_MAX_STARTUPS", "7")
    monkeypatch.setenv("REPOLINK_SSH_IDLE_TIMEOUT", "42")
    from_env = SSHLimits.from_settings(Settings())
    assert (from_env.max_startups, from_env.idle_timeout) == (7, 42.0)
    assert from_env.max_startups_per_source == 10
