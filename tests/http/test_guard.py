"""What an anonymous HTTP peer can hold of ``host serve``: a deadline for its request, and one
of a bounded number of connections — while SSH keeps serving (issue 10 §3.1).

Against a real ``repolink host serve`` process, with real sockets that send half a request and
stop, as the adversarial review did with 1100 of them.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
from typer.testing import CliRunner

from repolink.cli.host import app as host_app
from support.hostkit import GitClient, KeyPair
from support.servekit import serving

HALF_REQUEST = b"GET /host/api/2.0/repositories/team HTTP/1.1\r\nHost: x\r\nX-Slow: "
WAIT = 30.0


def half_requests(stack: ExitStack, port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), WAIT))
        sock.sendall(HALF_REQUEST)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (waits for it up to :data:`WAIT`)."""
    sock.settimeout(WAIT)
    try:
        while chunk := sock.recv(4096):
            del chunk  # an answer before the close is fine; the close is what counts
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_half_requests_are_closed_after_the_request_timeout(tmp_path: Path) -> None:
    settings = {"REPOLINK_HTTP_REQUEST_TIMEOUT": "0.5"}
    with serving(tmp_path / "data", settings) as (_, _, http_port), ExitStack() as stack:
        headers_only = half_requests(stack, http_port, 20)
        body = stack.enter_context(socket.create_connection(("127.0.0.1", http_port), WAIT))
        body.sendall(
            b"POST /host/api/2.0/repositories/team HTTP/1.1\r\nHost: x\r\n"
            b'Content-Length: 1000\r\n\r\n{"slug": '
        )
        assert all(closed_by_server(sock) for sock in [*headers_only, body])
        # A whole request is still answered.
        answer = httpx.get(f"http://127.0.0.1:{http_port}/host/api/2.0/repositories/team")
        assert answer.status_code == 401


def test_a_body_the_app_waits_for_is_held_to_the_deadline_too(tmp_path: Path) -> None:
    # Authenticated, so the route reads the body (an anonymous one is answered 401 before
    # it): the app is running and waiting while the body still arrives.
    token = "guard-test-admin-token"
    settings = {"REPOLINK_HTTP_REQUEST_TIMEOUT": "0.5", "REPOLINK_ADMIN_TOKEN": token}
    with serving(tmp_path / "data", settings) as (_, _, http_port), ExitStack() as stack:
        body = stack.enter_context(socket.create_connection(("127.0.0.1", http_port), WAIT))
        body.sendall(
            b"POST /host/api/2.0/repositories/team/app HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"scm": '
        )
        assert closed_by_server(body)


def test_when_http_is_full_ssh_works_and_a_new_request_is_answered(
    tmp_path: Path, make_key: Callable[[str], KeyPair]
) -> None:
    data_dir = tmp_path / "data"
    key = make_key("person")
    runner = CliRunner()
    env = {"REPOLINK_DATA_DIR": str(data_dir)}
    for args, given in (
        (["repo", "create", "team/app"], None),
        (["account-key", "add", "team", "-", "--label", "p"], key.public_line),
    ):
        done = runner.invoke(host_app, args, env=env, input=given, catch_exceptions=False)
        assert done.exit_code == 0, done.output
    # A deadline far away: only the cap can make room.
    settings = {"REPOLINK_HTTP_MAX_CONNECTIONS": "16", "REPOLINK_HTTP_REQUEST_TIMEOUT": "600"}
    with serving(data_dir, settings) as (_, ssh_port, http_port), ExitStack() as stack:
        held = half_requests(stack, http_port, 16)

        listed = runner.invoke(
            host_app, ["fingerprints", "--listen", f"127.0.0.1:{ssh_port}", "--json"], env=env
        )
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(
            "".join(f"{entry['known_hosts']}\n" for entry in json.loads(listed.stdout))
        )
        client = GitClient(tmp_path / "home", key, known_hosts, ssh_port)
        refs = client.git("ls-remote", client.url("team/app.git"))
        assert refs.returncode == 0, refs.stderr

        answer = httpx.get(
            f"http://127.0.0.1:{http_port}/host/api/2.0/repositories/team", timeout=WAIT
        )
        assert answer.status_code == 401  # answered by the API: it wants a token
        # The connection that waited longest made way for it.
        readable, _, _ = select.select(held, [], [], WAIT)
        assert held[0] in readable and closed_by_server(held[0])
        assert sum(1 for sock in held if sock in readable) == 1
