"""repolink.git.sshmux as a passenger of a real OpenSSH master connected to the built-in host, and
against control sockets that are not a usable master (none, stale, another protocol, mute)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repolink.git.protocol import list_refs, upload_pack_command
from repolink.git.sshmux import MSG_HELLO, S_FAILURE, MuxTimeout, MuxUnavailable, passenger
from repolink.urls import parse_ssh_url
from support.hostkit import (
    EmbeddedHost,
    GitClient,
    LoopThread,
    make_source_repository,
    start_embedded_host,
)

PREFIXES = ("refs/heads/", "refs/tags/")
V2 = ["GIT_PROTOCOL=version=2"]
TIMEOUT = 30


@dataclass
class Hosted:
    host: EmbeddedHost
    client: GitClient

    def url(self, path: str) -> str:
        return f"ssh://git@127.0.0.1:{self.host.port}/{path}"

    def command(self, path: str) -> str:
        command = upload_pack_command(parse_ssh_url(self.url(path)))
        assert command is not None
        return command

    def ls_remote(self, path: str) -> dict[str, str]:
        done = self.client.git("ls-remote", "--heads", "--tags", "--refs", self.url(path))
        assert done.returncode == 0, done.stderr
        return {
            name: target for target, name in (line.split("\t") for line in done.stdout.splitlines())
        }


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path_factory.mktemp("host"), loop)
    try:
        service = host.service
        account = host.key("account")
        service.create_repository("team", "app")
        service.add_account_key("team", account.public_line, label="developer")
        client = host.client(account, name="account")
        source = host.root / "source-app"
        make_source_repository(source, client.env(), commits=4)
        for args in (
            ("tag", "v1.0", "HEAD~2"),
            ("tag", "-a", "v1.1", "-m", "release 1.1", "HEAD~1"),
            ("branch", "feature/x", "HEAD~3"),
            ("push", "-q", client.url("team/app.git"), "main", "feature/x", "v1.0", "v1.1"),
        ):
            done = client.git(*args, cwd=source)
            assert done.returncode == 0, done.stderr
        yield Hosted(host, client)
    finally:
        stop()
        loop.stop()


@contextlib.contextmanager
def _master(hosted: Hosted) -> Iterator[Path]:
    """A real OpenSSH master to the host, listening on a short control path."""
    directory = Path(tempfile.mkdtemp(prefix="rl-mux-", dir="/tmp"))
    control = directory / "s"
    log = directory / "ssh.log"
    argv = [
        *hosted.client.ssh_argv(
            "ControlMaster=yes",
            f"ControlPath={control}",
            "ControlPersist=60",
            "SendEnv=GIT_PROTOCOL",
        ),
        "-N",
        "-f",
        "-p",
        str(hosted.host.port),
        "git@127.0.0.1",
    ]
    try:
        with log.open("wb") as errors:
            # Not a pipe: the backgrounded master would hold it open.
            done = subprocess.run(
                argv,
                env=hosted.client.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                timeout=TIMEOUT,
            )
        assert done.returncode == 0, log.read_text()
        assert control.exists()
        yield control
    finally:
        _stop_master(hosted, control)
        shutil.rmtree(directory, ignore_errors=True)


def _stop_master(hosted: Hosted, control: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", os.devnull, "-o", f"ControlPath={control}", "-O", "exit", "127.0.0.1"],
        env=hosted.client.env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def master(hosted: Hosted) -> Iterator[Path]:
    with _master(hosted) as control:
        yield control


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory whose paths fit a unix socket address."""
    directory = Path(tempfile.mkdtemp(prefix="rl-mux-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Recorder:
    """A passenger session's streams, keeping what was read (to see the protocol spoken)."""

    def __init__(self, stream: object) -> None:
        self._stream = stream
        self.received = bytearray()

    def read_exactly(self, count: int) -> bytes:
        data: bytes = self._stream.read_exactly(count)  # type: ignore[attr-defined]
        self.received += data
        return data

    def write(self, data: bytes) -> None:
        self._stream.write(data)  # type: ignore[attr-defined]


# -- a real master ----------------------------------------------------------------------------


def test_a_passenger_lists_the_refs_git_ls_remote_lists(hosted: Hosted, master: Path) -> None:
    expected = hosted.ls_remote("team/app.git")

    with passenger(master, hosted.command("team/app.git"), env=V2, timeout=TIMEOUT) as session:
        stream = Recorder(session)
        refs = list_refs(stream, PREFIXES)
        status = session.wait()

    assert refs == expected
    assert {"refs/heads/main", "refs/heads/feature/x", "refs/tags/v1.1"} <= set(refs)
    assert status == 0
    # GIT_PROTOCOL reached the host through the master: it answered in protocol version 2.
    assert stream.received[4:14] == b"version 2\n"


def test_without_the_protocol_variable_the_host_answers_in_version_0(
    hosted: Hosted, master: Path
) -> None:
    with passenger(master, hosted.command("team/app.git"), timeout=TIMEOUT) as session:
        stream = Recorder(session)
        refs = list_refs(stream, PREFIXES)
        status = session.wait()

    assert refs == hosted.ls_remote("team/app.git")
    assert status == 0
    assert b"version 2" not in stream.received


def test_a_missing_repository_is_a_failed_exit_status(hosted: Hosted, master: Path) -> None:
    with passenger(master, hosted.command("team/missing.git"), env=V2, timeout=TIMEOUT) as session:
        status = session.wait()

    assert status != 0


def test_two_passengers_share_one_master_at_once(hosted: Hosted, master: Path) -> None:
    command = hosted.command("team/app.git")
    expected = hosted.ls_remote("team/app.git")

    with (
        passenger(master, command, env=V2, timeout=TIMEOUT) as first,
        passenger(master, command, timeout=TIMEOUT) as second,
    ):
        second_refs = list_refs(second, PREFIXES)
        first_refs = list_refs(first, PREFIXES)
        statuses = (first.wait(), second.wait())

    assert first_refs == expected and second_refs == expected
    assert statuses == (0, 0)


def test_a_session_past_its_deadline_is_unavailable(hosted: Hosted, master: Path) -> None:
    # upload-pack advertises its refs, then waits for the client's wants: never 1 MiB of output.
    with (
        pytest.raises(MuxUnavailable),
        passenger(master, hosted.command("team/app.git"), timeout=1) as session,
    ):
        session.read_exactly(1 << 20)

    # The master itself is unharmed.
    with passenger(master, hosted.command("team/app.git"), env=V2, timeout=TIMEOUT) as session:
        assert list_refs(session, PREFIXES) == hosted.ls_remote("team/app.git")
        assert session.wait() == 0


def test_a_stopped_master_is_unavailable(hosted: Hosted) -> None:
    with _master(hosted) as control:
        with passenger(control, hosted.command("team/app.git"), env=V2, timeout=TIMEOUT) as s:
            assert list_refs(s, PREFIXES) and s.wait() == 0
        stopped = _stop_master(hosted, control)
        assert stopped.returncode == 0, stopped.stderr

        with (
            pytest.raises(MuxUnavailable),
            passenger(control, hosted.command("team/app.git"), env=V2, timeout=TIMEOUT),
        ):
            pass


# -- no usable master -------------------------------------------------------------------------


def test_no_socket_file_is_unavailable(short_dir: Path) -> None:
    with pytest.raises(MuxUnavailable), passenger(short_dir / "s", "true", timeout=TIMEOUT):
        pass


def test_a_stale_socket_file_is_unavailable(short_dir: Path) -> None:
    control = short_dir / "s"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(control))
    stale.close()  # the file stays, nobody listens: what a killed master leaves
    assert control.exists()

    with pytest.raises(MuxUnavailable), passenger(control, "true", timeout=TIMEOUT):
        pass


def _receive_message(conn: socket.socket) -> bytes:
    header = _receive_all(conn, 4)
    (length,) = struct.unpack(">I", header)
    return _receive_all(conn, length)


def _receive_all(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the passenger went away")
        data += chunk
    return data


class FakeMaster:
    """A unix socket server that treats each control connection with ``answer``."""

    def __init__(self, path: Path, answer: Callable[[socket.socket, threading.Event], None]):
        self.stopped = threading.Event()
        self.errors: list[BaseException] = []
        self._answer = answer
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            try:
                self._answer(conn, self.stopped)
            except (OSError, ConnectionError):
                pass
            except BaseException as exc:  # an assertion about what the passenger sent
                self.errors.append(exc)

    def close(self) -> None:
        self.stopped.set()
        self._listener.close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def fake_master(short_dir: Path) -> Iterator[Callable[..., Path]]:
    masters: list[FakeMaster] = []

    def start(answer: Callable[[socket.socket, threading.Event], None]) -> Path:
        path = short_dir / "s"
        masters.append(FakeMaster(path, answer))
        return path

    yield start
    for fake in masters:
        fake.close()


def _wait_for_passenger_to_leave(conn: socket.socket, stopped: threading.Event) -> None:
    conn.settimeout(0.1)
    while not stopped.is_set():
        try:
            if not conn.recv(4096):
                return
        except TimeoutError:
            continue


def test_a_master_of_another_protocol_version_is_unavailable(
    fake_master: Callable[..., Path],
) -> None:
    def answer(conn: socket.socket, stopped: threading.Event) -> None:
        hello = _receive_message(conn)
        assert struct.unpack(">II", hello) == (MSG_HELLO, 4)
        conn.sendall(struct.pack(">III", 8, MSG_HELLO, 3))
        _wait_for_passenger_to_leave(conn, stopped)

    control = fake_master(answer)

    with pytest.raises(MuxUnavailable), passenger(control, "true", timeout=TIMEOUT):
        pass


def test_a_master_that_never_answers_is_unavailable(fake_master: Callable[..., Path]) -> None:
    control = fake_master(_wait_for_passenger_to_leave)

    with pytest.raises(MuxUnavailable), passenger(control, "true", timeout=0.5):
        pass


def test_a_master_that_hangs_up_is_unavailable(fake_master: Callable[..., Path]) -> None:
    control = fake_master(lambda conn, stopped: None)

    with pytest.raises(MuxUnavailable), passenger(control, "true", timeout=TIMEOUT):
        pass


def test_a_master_that_refuses_the_session_is_unavailable(
    fake_master: Callable[..., Path],
) -> None:
    seen: dict[str, object] = {}

    def answer(conn: socket.socket, stopped: threading.Event) -> None:
        _receive_message(conn)
        conn.sendall(struct.pack(">III", 8, MSG_HELLO, 4))
        request = _receive_message(conn)
        seen["request"] = request
        descriptors = []
        for _ in range(3):
            _data, fds, _flags, _addr = socket.recv_fds(conn, 1, 1)
            descriptors += fds
        seen["descriptors"] = len(descriptors)
        for fd in descriptors:
            os.close(fd)
        reason = b"refused by the test"
        (request_id,) = struct.unpack_from(">I", request, 4)
        body = struct.pack(">II", S_FAILURE, request_id) + struct.pack(">I", len(reason)) + reason
        conn.sendall(struct.pack(">I", len(body)) + body)
        _wait_for_passenger_to_leave(conn, stopped)

    control = fake_master(answer)

    with (
        pytest.raises(MuxUnavailable, match="refused by the test"),
        passenger(control, "git-upload-pack '/x.git'", env=V2, timeout=TIMEOUT),
    ):
        pass

    assert seen["descriptors"] == 3
    request = seen["request"]
    assert isinstance(request, bytes)
    assert b"git-upload-pack '/x.git'" in request and b"GIT_PROTOCOL=version=2" in request


def test_closing_a_session_twice_leaves_other_descriptors_alone(
    hosted: Hosted, master: Path
) -> None:
    with passenger(master, hosted.command("team/app.git"), timeout=TIMEOUT) as session:
        session.close()
        # The numbers the session held are free again: an unrelated file may get them.
        unrelated = [os.open(os.devnull, os.O_RDONLY) for _ in range(4)]
    try:
        for fd in unrelated:
            os.fstat(fd)  # still open after the passenger's own (second) close
    finally:
        for fd in unrelated:
            os.close(fd)


def test_a_stalled_master_is_a_timeout(fake_master: Callable[..., Path]) -> None:
    # The caller tells a stall (ride no more on that connection) from an absent master.
    control = fake_master(_wait_for_passenger_to_leave)

    with pytest.raises(MuxTimeout), passenger(control, "true", timeout=0.5):
        pass
