"""The server module in process: SSH and HTTP started from one app, reported, stopped.

``host serve`` as a subprocess (signals, printed lines) is tested in tests/host/test_cli.py.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from repolink.app import Repolink
from repolink.errors import ValidationError
from repolink.server import (
    ServerOptions,
    configure_logging,
    default_ssh_url,
    join_address,
    parse_address,
    serve,
)
from repolink.settings import Settings
from repolink.ssh.server import RunningSSHServer

WAIT = 30.0


class Recorder:
    """A reporter that keeps what it heard, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.http_ready = asyncio.Event()

    def ssh_started(self, ssh: RunningSSHServer, ssh_url_base: str) -> None:
        self.events.append(("ssh", f"{join_address(ssh.host, ssh.port)} {ssh_url_base}"))

    def http_started(self, url: str) -> None:
        self.events.append(("http", url))
        self.http_ready.set()

    def notice(self, text: str) -> None:
        self.events.append(("notice", text))

    def stopping(self) -> None:
        self.events.append(("stopping", ""))


def test_serve_runs_ssh_and_http_until_stopped(tmp_path: Path) -> None:
    recorder = Recorder()
    options = ServerOptions(ssh_address=("127.0.0.1", 0), http_address=("127.0.0.1", 0))

    async def scenario() -> tuple[bytes, int]:
        stop = asyncio.Event()
        with Repolink(Settings(data_dir=tmp_path / "data")) as app:
            running = asyncio.create_task(serve(app, options, reporter=recorder, stop=stop))
            await asyncio.wait_for(recorder.http_ready.wait(), WAIT)
            ssh_port = int(recorder.events[0][1].split()[0].rpartition(":")[2])
            reader, writer = await asyncio.open_connection("127.0.0.1", ssh_port)
            banner = await asyncio.wait_for(reader.readline(), WAIT)
            writer.close()
            async with httpx.AsyncClient(trust_env=False) as client:
                answer = await client.get(f"{recorder.events[1][1]}/repositories/team")
            stop.set()
            await asyncio.wait_for(running, WAIT)
        return banner, answer.status_code

    banner, status = asyncio.run(scenario())
    assert banner.startswith(b"SSH-2.0-")
    assert status == 401  # the host API is there, and wants a token
    kinds = [kind for kind, _ in recorder.events]
    assert kinds == ["ssh", "http", "stopping"]
    address, clone_base = recorder.events[0][1].split()
    # Asked for port 0: the clone address names the port really bound.
    assert clone_base == f"ssh://git@{address}"
    assert recorder.events[1][1].startswith("http://127.0.0.1:")
    assert recorder.events[1][1].endswith("/host/api/2.0")


def test_ssh_only_when_http_is_off(tmp_path: Path) -> None:
    recorder = Recorder()
    options = ServerOptions(
        ssh_address=("127.0.0.1", 0), http_address=None, ssh_url="ssh://git@git.example:2222"
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        stop.set()  # stop as soon as everything started
        with Repolink(Settings(data_dir=tmp_path / "data")) as app:
            await asyncio.wait_for(serve(app, options, reporter=recorder, stop=stop), WAIT)

    asyncio.run(scenario())
    assert [kind for kind, _ in recorder.events] == ["ssh", "stopping"]
    assert recorder.events[0][1].endswith(" ssh://git@git.example:2222")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:2222", ("127.0.0.1", 2222)), ("[::1]:0", ("::1", 0)), (" h:22 ", ("h", 22))],
)
def test_addresses_are_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text, "--listen") == expected


@pytest.mark.parametrize("text", ["2222", ":2222", "host:", "host:port", "host:70000", "h:-1"])
def test_a_bad_address_names_the_option(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_address(text, "--http")
    assert caught.value.code == "listen_address_invalid"
    assert "--http must be HOST:PORT" in caught.value.one_line()


def test_an_unknown_log_level_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        configure_logging("chatty")
    assert caught.value.code == "log_level_invalid"


def test_default_ssh_url() -> None:
    assert default_ssh_url("127.0.0.1", 22) == "ssh://git@127.0.0.1"
    assert default_ssh_url("::1", 2222) == "ssh://git@[::1]:2222"
    assert default_ssh_url("0.0.0.0", 2222) == f"ssh://git@{socket.getfqdn()}:2222"
