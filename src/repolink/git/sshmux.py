"""A passenger session of an OpenSSH connection-sharing master, opened without starting ssh.

An ssh client spends about as long starting up (reading its options, loading OpenSSL) as
the master then needs to open a channel on its already authenticated connection and have the
server run the command. A refresh that only asks the server for its refs is mostly that
start-up; speaking the master's control protocol directly (OpenSSH ``PROTOCOL.mux``, version
4, "passenger" mode) halves it.

What a passenger can do is bounded by the master: it rides a connection that ssh has already
made with strict host key checking against the run's known_hosts and authenticated with the
run's key; the passenger holds neither and runs one command on that connection. The control
socket sits in a private directory (:mod:`repolink.git.sharing`).

Every problem here — no master, a stale socket, a master that refuses, a protocol surprise,
a deadline passed — raises :class:`MuxUnavailable`, which is never shown to a user: the caller
then does what it would have done without a master, through its
:class:`repolink.git.runner.GitRunner`.

Wire format: each message is ``uint32 length`` then the body; bodies start with a ``uint32``
type. The client sends its hello and a new-session request, then passes the three standard
descriptors of the session (the far ends of three pipes) with ``SCM_RIGHTS``, one per message.
The master answers "session opened" and, when the remote command ends, its exit status.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import select
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["MuxTimeout", "MuxUnavailable", "PassengerSession", "passenger"]

MUX_VERSION = 4
MSG_HELLO = 0x00000001
C_NEW_SESSION = 0x10000002
S_OK = 0x80000001
S_PERMISSION_DENIED = 0x80000002
S_FAILURE = 0x80000003
S_EXIT_MESSAGE = 0x80000004
S_SESSION_OPENED = 0x80000006
S_TTY_ALLOC_FAIL = 0x80000008
NO_ESCAPE_CHAR = 0xFFFFFFFF

_REQUEST_ID = 1
# Control messages are small; anything larger is not the protocol we speak.
_MAX_MESSAGE = 1 << 16
_READ_CHUNK = 1 << 16
_STDERR_KEPT = 4096


class MuxUnavailable(Exception):
    """No usable passenger session: the caller runs ssh instead. Never user-facing."""


class NoMaster(MuxUnavailable):
    """Nothing listens on the control socket: no master, or one that exited or was killed and
    left its socket behind (the next ssh to use that path removes it)."""


class MuxTimeout(MuxUnavailable):
    """The deadline passed: the shared connection may be stalled, so the caller had better not
    ride it again in this run."""


class PassengerSession:
    """The remote command's standard streams and exit status, all bounded by one deadline.

    Standard error is drained while reading (a server that writes much of it cannot stall the
    session); its last few KiB are kept in :attr:`stderr` for a debug log line.
    """

    def __init__(
        self, control: socket.socket, stdin: int, stdout: int, stderr: int, deadline: float
    ) -> None:
        self._control = control
        # Non-blocking, so that a write to a command that stopped reading cannot outlast the
        # deadline (POLLOUT promises room for PIPE_BUF bytes, not for a whole request).
        os.set_blocking(stdin, False)
        self._stdin: int | None = stdin
        self._stdout: int | None = stdout
        self._stderr: int | None = stderr
        self._deadline = deadline
        self._buffer = bytearray()
        self._stdout_closed = False
        self.stderr = b""

    # -- standard streams --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._stdin is None:
            raise MuxUnavailable("standard input is already closed")
        view = memoryview(data)
        while view:
            self._wait_for(self._stdin, select.POLLOUT)
            try:
                written = os.write(self._stdin, view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise MuxUnavailable(f"the remote command stopped reading: {exc}") from None
            view = view[written:]

    def close_stdin(self) -> None:
        if self._stdin is not None:
            os.close(self._stdin)
            self._stdin = None

    def read_exactly(self, count: int) -> bytes:
        """``count`` bytes of standard output; end of output first is :class:`MuxUnavailable`."""
        while len(self._buffer) < count:
            if self._stdout_closed:
                raise MuxUnavailable("the remote command's output ended early")
            self._fill()
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def _fill(self) -> None:
        if self._stdout is None:
            raise MuxUnavailable("the session is closed")
        poller = select.poll()
        poller.register(self._stdout, select.POLLIN)
        if self._stderr is not None:
            poller.register(self._stderr, select.POLLIN)
        for fd, _event in poller.poll(self._remaining_ms()):
            chunk = os.read(fd, _READ_CHUNK)
            if fd == self._stdout:
                if chunk:
                    self._buffer += chunk
                else:
                    self._stdout_closed = True
            elif chunk:
                self.stderr = (self.stderr + chunk)[-_STDERR_KEPT:]
            else:
                self._close_stderr()
        self._check_deadline()

    # -- the session's end -------------------------------------------------------------------

    def wait(self) -> int:
        """The remote command's exit status, as the master reports it."""
        self.close_stdin()
        while True:
            kind, body = _receive(self._control, self._deadline)
            if kind == S_EXIT_MESSAGE and len(body) >= 8:
                (status,) = struct.unpack_from(">I", body, 4)
                return int(status)
            if kind not in (S_OK, S_TTY_ALLOC_FAIL):
                raise MuxUnavailable(f"unexpected control message {kind:#010x}")

    def close(self) -> None:
        """Close every descriptor of the session; calling it again does nothing."""
        self.close_stdin()
        self._close_stderr()
        if self._stdout is not None:
            with contextlib.suppress(OSError):
                os.close(self._stdout)
            self._stdout = None
        self._control.close()

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            os.close(self._stderr)
            self._stderr = None

    def _wait_for(self, fd: int, event: int) -> None:
        poller = select.poll()
        poller.register(fd, event)
        if not poller.poll(self._remaining_ms()):
            self._check_deadline()

    def _remaining_ms(self) -> int:
        return max(0, math.ceil((self._deadline - time.monotonic()) * 1000))

    def _check_deadline(self) -> None:
        if time.monotonic() >= self._deadline:
            raise MuxTimeout("the passenger session did not finish in time")


@contextlib.contextmanager
def passenger(
    control_path: Path, command: str, *, env: Sequence[str] = (), timeout: float
) -> Iterator[PassengerSession]:
    """Run ``command`` on the connection of the master listening at ``control_path``.

    ``env``: ``NAME=value`` strings; the master forwards those its own ``SendEnv`` allows.
    Raises :class:`MuxUnavailable` when no master answers there or the session cannot be
    opened, or when ``timeout`` seconds pass before the caller is done.
    """
    deadline = time.monotonic() + timeout
    request = _new_session_request(command, env)
    control = _connect(control_path, timeout)
    opened: list[int] = []  # every pipe end made so far, closed on any failure
    session: PassengerSession | None = None
    try:
        _send(control, struct.pack(">II", MSG_HELLO, MUX_VERSION), deadline)
        kind, body = _receive(control, deadline)
        if kind != MSG_HELLO or len(body) < 4 or struct.unpack_from(">I", body)[0] != MUX_VERSION:
            raise MuxUnavailable("the master speaks another multiplexing protocol")
        _send(control, request, deadline)
        for _stream in range(3):
            opened += os.pipe()
        stdin_read, stdin_write, stdout_read, stdout_write, stderr_read, stderr_write = opened
        for fd in (stdin_read, stdout_write, stderr_write):  # the master's ends, in this order
            control.settimeout(_remaining(deadline))
            socket.send_fds(control, [b"\0"], [fd])
        session = PassengerSession(control, stdin_write, stdout_read, stderr_read, deadline)
        # The session owns our ends; the master holds copies of its ends, ours are closed.
        opened = [stdin_read, stdout_write, stderr_write]
        _close_all(opened)
        opened = []
        kind, body = _receive(control, deadline)
        if kind == S_OK:  # PROTOCOL.mux mentions one here; OpenSSH's own master sends none
            kind, body = _receive(control, deadline)
        if kind != S_SESSION_OPENED:
            raise MuxUnavailable(f"the master did not open a session ({_reason(kind, body)})")
    except BaseException as exc:
        _close_all(opened)
        if session is not None:
            session.close()
        else:
            control.close()
        if isinstance(exc, TimeoutError):
            raise MuxTimeout("the master did not answer in time") from None
        if isinstance(exc, OSError):
            raise MuxUnavailable(f"talking to the master failed: {exc.strerror or exc}") from None
        raise
    try:
        yield session
    except OSError as exc:
        raise MuxUnavailable(f"the passenger session failed: {exc.strerror or exc}") from None
    finally:
        session.close()


def _connect(control_path: Path, timeout: float) -> socket.socket:
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.settimeout(timeout)
    try:
        control.connect(os.fsencode(control_path))
    except OSError as exc:
        control.close()
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
            raise NoMaster("no master listens on the control socket") from None
        raise MuxUnavailable(f"cannot reach the master: {exc.strerror or exc}") from None
    if not _peer_is_us(control):
        control.close()
        raise MuxUnavailable("the control socket belongs to another user")
    return control


def _peer_is_us(control: socket.socket) -> bool:
    """The process listening is our own user's (where the system says so): the socket's
    directory is private, and this makes sure of it."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    credentials = control.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    uid: int = struct.unpack("3i", credentials)[1]
    return uid == os.getuid()


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise MuxTimeout("the master did not answer in time")
    return remaining


def _new_session_request(command: str, env: Sequence[str]) -> bytes:
    # The flags are uint32 on the wire (OpenSSH's client writes them so): no tty, no X11, no
    # agent, not a subsystem; no escape character; no terminal type.
    body = struct.pack(">II", C_NEW_SESSION, _REQUEST_ID) + _string(b"")
    body += struct.pack(">IIIII", 0, 0, 0, 0, NO_ESCAPE_CHAR)
    body += _string(b"") + _string(command.encode("utf-8"))
    for entry in env:
        body += _string(entry.encode("utf-8"))
    return body


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _send(control: socket.socket, body: bytes, deadline: float) -> None:
    control.settimeout(_remaining(deadline))
    control.sendall(struct.pack(">I", len(body)) + body)


def _receive(control: socket.socket, deadline: float) -> tuple[int, bytes]:
    """One control message: its type and the rest of its body."""
    header = _receive_exactly(control, 4, deadline)
    (length,) = struct.unpack(">I", header)
    if not 4 <= length <= _MAX_MESSAGE:
        raise MuxUnavailable(f"a control message of {length} bytes is not the protocol")
    body = _receive_exactly(control, length, deadline)
    (kind,) = struct.unpack_from(">I", body)
    return kind, body[4:]


def _receive_exactly(control: socket.socket, count: int, deadline: float) -> bytes:
    data = bytearray()
    while len(data) < count:
        control.settimeout(_remaining(deadline))
        try:
            chunk = control.recv(count - len(data))
        except TimeoutError:
            raise MuxTimeout("the master did not answer in time") from None
        except OSError as exc:
            raise MuxUnavailable(f"the master's socket failed: {exc.strerror or exc}") from None
        if not chunk:
            raise MuxUnavailable("the master closed the control connection")
        data += chunk
    return bytes(data)


def _reason(kind: int, body: bytes) -> str:
    if kind in (S_PERMISSION_DENIED, S_FAILURE) and len(body) >= 8:
        (length,) = struct.unpack_from(">I", body, 4)
        return body[8 : 8 + length].decode("utf-8", "replace")[:200]
    return f"message {kind:#010x}"


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
