"""Every process repolink starts goes through a :class:`GitRunner` (architecture.md#security).

:class:`GitRunner` is the interface: every way repolink starts a process — a git or ssh run to
completion (:meth:`~GitRunner.run`), a server's git child (:meth:`~GitRunner.spawn` and
:meth:`~GitRunner.terminate`), git attached to sshd's streams or replacing this process
(OpenSSH mode's shell), and a detached worker. The application object holds one and hands it to
every service, so a test can put a recording runner in its place without touching module
globals. :class:`HardenedRunner` is the implementation:

- :meth:`HardenedRunner.run` starts a process with stdin closed, in its own session, reads its
  output without deadlock, and enforces a wall-clock limit (SIGTERM to the process group, then
  SIGKILL). It reports a timeout in :attr:`CompletedRun.timed_out` and lets the caller decide;
  :meth:`CompletedRun.check` turns a timeout or failure into a :class:`GitError`.
- :meth:`HardenedRunner.spawn` and :meth:`HardenedRunner.terminate` are the asyncio twins for
  servers.

The child's environment and argv come from :mod:`repolink.git.environment`; its key file from
:mod:`repolink.git.keyfiles`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn, Protocol

from repolink.errors import GitError
from repolink.git.keyfiles import scrub

if TYPE_CHECKING:
    # Imported where a server spawns a process: a CLI command never does, and asyncio's
    # import (ssl with it) is a tenth of a read command's start-up (issue 10 §2).
    import asyncio

log = logging.getLogger(__name__)

__all__ = [
    "CANCELLED",
    "DEFAULT_KILL_GRACE",
    "LOCAL_GIT_TIMEOUT",
    "STDERR_LIMIT_BYTES",
    "CompletedRun",
    "GitRunner",
    "HardenedRunner",
]

DEFAULT_KILL_GRACE = 5.0
# The wall-clock limit of a git command on a repository on our own disk (a mirror, a hosted
# repository): no network, so only a machine in trouble comes near it.
LOCAL_GIT_TIMEOUT = 120.0
STDERR_LIMIT_BYTES = 1 << 20

_READ_CHUNK = 1 << 16
_POLL_INTERVAL = 0.02
# How often a run that can be cancelled looks whether it was.
_CANCEL_CHECK = 0.1
_CANCELLED_JOIN = 0.5
# The GitError code of work stopped by its cancel event (here or by git.cancel).
CANCELLED = "cancelled"
_LINE_BREAK = re.compile(rb"[\r\n]")


@dataclass(frozen=True)
class CompletedRun:
    """What a finished (or stopped) process left behind.

    ``stderr`` is decoded as UTF-8 (invalid bytes replaced) and holds at most the last
    ``STDERR_LIMIT_BYTES``; it is raw: :func:`scrub` it before showing it to anyone.
    """

    returncode: int
    stdout: bytes
    stderr: str
    timed_out: bool
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def check(
        self, what: str, *, code: str = "git_failed", secrets_paths: Iterable[Path] = ()
    ) -> CompletedRun:
        """Return self when the run succeeded, else raise :class:`GitError`.

        A timeout raises code ``timeout``; a non-zero exit raises ``code`` with the last line
        of the scrubbed stderr.
        """
        if self.timed_out:
            raise GitError(
                "timeout",
                f"{what} did not finish in time and was stopped after {self.duration:.0f} s",
                "check that the server is reachable, or raise REPOLINK_GIT_TIMEOUT",
            )
        if self.returncode != 0:
            cleaned = scrub(self.stderr, secrets_paths=secrets_paths).splitlines()
            last = next((line.strip() for line in reversed(cleaned) if line.strip()), "")
            detail = f": {last[:300]}" if last else ""
            raise GitError(
                code,
                f"{what} failed with exit status {self.returncode}{detail}",
                "check URL, host key, key and access step by step with the doctor",
            )
        return self


class GitRunner(Protocol):
    """How repolink starts processes; :class:`HardenedRunner` is the one implementation.

    Whatever implements it must keep architecture.md#security: a wrapper (a test's recorder)
    delegates to a :class:`HardenedRunner` rather than starting processes its own way.
    """

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        timeout: float,
        input: bytes | None = None,
        on_stderr_line: Callable[[str], None] | None = None,
        on_stdout: Callable[[bytes], None] | None = None,
        kill_grace: float = DEFAULT_KILL_GRACE,
        cancel: threading.Event | None = None,
    ) -> CompletedRun:
        """Run ``argv`` to completion or until ``timeout`` seconds have passed; stop it and
        raise ``cancelled`` as soon as ``cancel`` is set."""
        ...

    async def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` for a server, with pipes on all three standard streams."""
        ...

    async def terminate(
        self, process: asyncio.subprocess.Process, *, grace: float = DEFAULT_KILL_GRACE
    ) -> int:
        """Stop a :meth:`spawn`-ed process and its group; its exit status."""
        ...

    def run_attached(self, argv: Sequence[str], *, env: Mapping[str, str]) -> int:
        """Run ``argv`` on this process's own standard streams; its exit status."""
        ...

    def replace_process(self, argv: Sequence[str], *, env: Mapping[str, str]) -> NoReturn:
        """Replace this process with ``argv`` (exec)."""
        ...

    def start_detached(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> bool:
        """Start ``argv`` in a session of its own, without standard streams; whether it
        started."""
        ...


class HardenedRunner:
    """Starts processes as architecture.md#security requires: only the environment given, no
    inherited file descriptors, a session (process group) of its own, and a time limit where there
    is one. Stateless: one instance per application is enough, any number is harmless."""

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        timeout: float,
        input: bytes | None = None,
        on_stderr_line: Callable[[str], None] | None = None,
        on_stdout: Callable[[bytes], None] | None = None,
        kill_grace: float = DEFAULT_KILL_GRACE,
        cancel: threading.Event | None = None,
    ) -> CompletedRun:
        """Run ``argv`` to completion or until ``timeout`` seconds have passed.

        The child gets ``env`` as its whole environment (build it with
        :func:`repolink.git.environment.hardened_env`), stdin from /dev/null unless ``input``
        is given, no inherited file descriptors, and a new session, so that its whole process
        group can be stopped: on timeout SIGTERM, then SIGKILL after ``kill_grace`` seconds.
        Processes of the group still running when the child exits are stopped the same way (an
        ssh connection-sharing master is not one of them: ssh moves it into a session of its
        own, see :mod:`repolink.git.sharing`). A timeout is reported as ``timed_out=True``,
        not raised.

        ``on_stderr_line`` receives each stderr line as it arrives (split at ``\\r`` too: git's
        progress); ``on_stdout`` receives stdout chunks as they arrive, and ``stdout`` is then
        empty. Both are called from reader threads; an exception they raise stops the process
        and is re-raised here. Raises :class:`GitError` (``git_not_found``, ``ssh_not_found``,
        ``program_not_found``, ``process_start_failed``) when the program cannot be started.

        ``cancel``: when it is set (from any thread) the process group is stopped the same way
        and :class:`GitError` ``cancelled`` raised — how a stopping server ends a fetch.
        """
        argv = _checked(argv)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive: {timeout}")
        log.debug("running %s", shlex.join(argv))
        started = time.monotonic()
        proc = _popen(argv, env=env, cwd=cwd, with_input=input is not None)
        assert proc.stdout is not None and proc.stderr is not None

        failures: list[BaseException] = []
        stdout_chunks: list[bytes] = []
        stderr_lines = _LineSplitter(on_stderr_line)
        threads = [
            _start_reader(proc, proc.stdout, on_stdout or stdout_chunks.append, failures),
            _start_reader(proc, proc.stderr, stderr_lines.feed, failures),
        ]
        if input is not None:
            assert proc.stdin is not None
            threads.append(_start_writer(proc.stdin, input))

        timed_out = cancelled = False
        try:
            exited = _wait_for_exit(proc, timeout, cancel)
            if not exited and cancel is not None and cancel.is_set():
                cancelled = True
                log.info("%s was cancelled; stopping it", argv[0])
            elif not exited:
                timed_out = True
                log.warning("%s exceeded its %.0f s limit; stopping it", argv[0], timeout)
            _stop_group(proc, kill_grace)
        except BaseException:
            _signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=kill_grace)
            raise
        finally:
            # A cancelled run's output is thrown away: no reason to wait for it long (a shared
            # SSH connection's master may hold the pipes until its channel closes).
            join_timeout = _CANCELLED_JOIN if cancelled else kill_grace + 1
            for thread in threads:
                thread.join(timeout=join_timeout)
                if thread.is_alive() and not cancelled:
                    log.warning("output of %s still open after it was stopped", argv[0])
            for stream in (proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    stream.close()

        if failures:
            raise failures[0]
        if cancelled:
            raise GitError(
                CANCELLED,
                f"{Path(argv[0]).name} was stopped: its work was cancelled",
                "it is run again when the work is",
            )
        stderr_lines.flush()
        return CompletedRun(
            returncode=proc.returncode,
            stdout=b"".join(stdout_chunks),
            stderr=stderr_lines.text(),
            timed_out=timed_out,
            duration=time.monotonic() - started,
        )

    async def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` for a server: stdin, stdout and stderr are pipes, the environment is
        ``env`` only, no inherited file descriptors, its own session. Stop it with
        :meth:`terminate`."""
        import asyncio

        argv = _checked(argv)
        log.debug("spawning %s", shlex.join(argv))
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env),
                cwd=cwd,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise _start_failed(argv[0], exc) from None

    async def terminate(
        self, process: asyncio.subprocess.Process, *, grace: float = DEFAULT_KILL_GRACE
    ) -> int:
        """SIGTERM the process group of a :meth:`spawn`-ed process, SIGKILL it after ``grace``
        seconds if anything of it is left; return the exit status."""
        import asyncio

        pgid = process.pid
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if process.returncode is not None and not _group_exists(pgid):
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), _POLL_INTERVAL)
        else:
            _signal_group(pgid, signal.SIGKILL)
        return await process.wait()

    def run_attached(self, argv: Sequence[str], *, env: Mapping[str, str]) -> int:
        """Run ``argv`` on this process's stdin, stdout and stderr (sshd's pipes, in OpenSSH
        mode: git talks to the client over them, so they cannot be captured); the environment
        is ``env`` only, no other file descriptors. No time limit: the client's connection
        bounds it."""
        argv = _checked(argv)
        log.debug("running attached %s", shlex.join(argv))
        return subprocess.run(argv, env=dict(env), close_fds=True, check=False).returncode

    def replace_process(self, argv: Sequence[str], *, env: Mapping[str, str]) -> NoReturn:
        """Replace this process with ``argv``, environment ``env`` only: nothing of repolink
        stays between the program and this process's streams. What Python buffered is written
        first, since exec discards it."""
        argv = _checked(argv)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvpe(argv[0], argv, dict(env))  # noqa: S606 - our own argv, no shell involved

    def start_detached(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> bool:
        """Start ``argv`` in a session of its own with no standard streams, for work the
        caller must not wait for; whether it started. A failure to start is logged, never
        raised: the caller's own work has already succeeded.

        The child is reaped in a daemon thread, so a long-lived caller collects no zombie and
        a short-lived one is not kept alive."""
        argv = _checked(argv)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                env=dict(env),
                cwd=cwd,
            )
        except OSError as exc:
            log.error("cannot start %s: %s", shlex.join(argv), exc.strerror or exc)
            return False
        name = f"reaper of {Path(argv[0]).name} {process.pid}"
        threading.Thread(target=process.wait, name=name, daemon=True).start()
        return True


# -- internals --------------------------------------------------------------------------------


def _checked(argv: Sequence[str]) -> list[str]:
    argv = list(argv)
    if not argv:
        raise ValueError("argv is empty")
    return argv


def _popen(
    argv: list[str], *, env: Mapping[str, str], cwd: Path | None, with_input: bool
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if with_input else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        if cwd is not None and not Path(cwd).is_dir():
            raise ValueError(f"working directory does not exist: {cwd}") from None
        raise _start_failed(argv[0], exc) from None


def _start_failed(program: str, exc: OSError) -> GitError:
    name = Path(program).name
    if isinstance(exc, FileNotFoundError):
        code = {"git": "git_not_found", "ssh": "ssh_not_found"}.get(name, "program_not_found")
        return GitError(
            code,
            f"the {name} program was not found",
            "install git and the OpenSSH client and make sure they are on PATH",
        )
    return GitError(
        "process_start_failed",
        f"could not start {name}: {exc.strerror or type(exc).__name__}",
        "check that the program is installed and executable",
    )


def _start_reader(
    proc: subprocess.Popen[bytes],
    stream: IO[bytes],
    sink: Callable[[bytes], None],
    failures: list[BaseException],
) -> threading.Thread:
    def pump() -> None:
        fd = stream.fileno()
        failed = False
        while True:
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:
                return
            if not chunk:
                return
            if failed:
                continue  # keep draining so the child is not blocked on a full pipe
            try:
                sink(chunk)
            except BaseException as exc:
                failed = True
                failures.append(exc)
                _signal_group(proc.pid, signal.SIGTERM)

    thread = threading.Thread(target=pump, name=f"runner-read-{proc.pid}", daemon=True)
    thread.start()
    return thread


def _start_writer(stream: IO[bytes], data: bytes) -> threading.Thread:
    def feed() -> None:
        with contextlib.suppress(OSError):  # the child may exit without reading it all
            stream.write(data)
        with contextlib.suppress(OSError):
            stream.close()

    thread = threading.Thread(target=feed, name="runner-write", daemon=True)
    thread.start()
    return thread


def _wait_for_exit(
    proc: subprocess.Popen[bytes], timeout: float, cancel: threading.Event | None = None
) -> bool:
    """Wait until ``proc`` exits, ``timeout`` passes or ``cancel`` is set; True when it exited
    (and is reaped).

    ``Popen.wait(timeout)`` polls with sleeps growing to 50 ms, which adds up to 50 ms to
    every short git command; a pidfd (Linux 5.3+) wakes us the moment the child exits. With
    ``cancel``, the wait is cut into slices of :data:`_CANCEL_CHECK` seconds to look at it.
    """
    deadline = time.monotonic() + timeout
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, or an old kernel: poll
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (cancel is not None and cancel.is_set()):
                return False
            try:
                proc.wait(timeout=min(remaining, _CANCEL_CHECK) if cancel else remaining)
            except subprocess.TimeoutExpired:
                continue
            return True
    try:
        waiter = select.poll()
        waiter.register(pidfd, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (cancel is not None and cancel.is_set()):
                return False
            slice_ = min(remaining, _CANCEL_CHECK) if cancel is not None else remaining
            if waiter.poll(slice_ * 1000):
                break
    finally:
        os.close(pidfd)
    proc.wait()
    return True


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM whatever is left of the child's process group, SIGKILL it after ``grace``."""
    pgid = proc.pid
    proc.poll()
    if not _group_exists(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        if not _group_exists(pgid):
            break
        time.sleep(_POLL_INTERVAL)
    else:
        log.warning("process group %d ignored SIGTERM; sending SIGKILL", pgid)
        _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("process %d did not exit after SIGKILL", pgid)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class _LineSplitter:
    """Collects stderr (bounded, keeping the tail) and hands out complete lines as they come."""

    def __init__(self, on_line: Callable[[str], None] | None) -> None:
        self._on_line = on_line
        self._pending = b""
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > 2 * STDERR_LIMIT_BYTES:
            tail = b"".join(self._chunks)[-STDERR_LIMIT_BYTES:]
            self._chunks, self._size = [tail], len(tail)
        if self._on_line is None:
            return
        *lines, self._pending = _LINE_BREAK.split(self._pending + chunk)
        for line in lines:
            if line:
                self._on_line(line.decode("utf-8", "replace"))

    def flush(self) -> None:
        if self._on_line is not None and self._pending:
            self._on_line(self._pending.decode("utf-8", "replace"))
        self._pending = b""

    def text(self) -> str:
        return b"".join(self._chunks)[-STDERR_LIMIT_BYTES:].decode("utf-8", "replace")
