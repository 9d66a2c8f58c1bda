"""Every git and ssh process repolink starts goes through here (DESIGN.md §5).

- :func:`hardened_env` builds a child's whole environment from scratch: isolated ``HOME``, no
  system or global git config, ssh as the only transport, no prompts, no agent.
- :func:`ssh_command` / :func:`git_ssh_command` are the ssh argv: no config file, only our key,
  strict host key checking against a per-run known_hosts file, timeouts, no forwarding.
- :func:`git_argv` puts the always-on ``-c`` settings (no hooks, ssh only, …) before the
  subcommand.
- :func:`private_key_file` puts a private key in a 0600 file inside a 0700 directory and removes
  both afterwards, whatever happens. The key never travels on an argument list.
- :func:`run` starts a process with stdin closed, in its own session, reads its output without
  deadlock, and enforces a wall-clock limit (SIGTERM to the process group, then SIGKILL). It
  reports a timeout in :attr:`CompletedRun.timed_out` and lets the caller decide;
  :meth:`CompletedRun.check` turns a timeout or failure into a :class:`GitError`.
- :func:`spawn` and :func:`terminate` are the asyncio twins for servers.
- :func:`scrub` cleans git/ssh stderr of temp paths and anything that looks like key material.

URLs reach git only as ``repolink.urls.SSHURL.git_url``, after ``--``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from repolink.errors import GitError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_KILL_GRACE",
    "CompletedRun",
    "git_argv",
    "git_ssh_command",
    "hardened_env",
    "private_key_file",
    "run",
    "scrub",
    "spawn",
    "ssh_command",
    "terminate",
]

DEFAULT_KILL_GRACE = 5.0
SAFE_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SERVER_ALIVE_INTERVAL = 15
SERVER_ALIVE_COUNT_MAX = 4
CONTROL_PERSIST = "60s"
# ssh binds the master socket at ControlPath plus a 17-character suffix; sun_path holds 108 bytes.
MAX_CONTROL_PATH_BYTES = 90
STDERR_LIMIT_BYTES = 1 << 20

_READ_CHUNK = 1 << 16
_POLL_INTERVAL = 0.02
_DEVNULL = os.devnull

# Keys a caller's ``extra`` may not set: they would undo the hardening.
_PROTECTED_ENV_PREFIXES = ("GIT_CONFIG", "LD_", "DYLD_")
_PROTECTED_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "GIT_ALLOW_PROTOCOL",
        "GIT_ATTR_NOSYSTEM",
        "GIT_TERMINAL_PROMPT",
        "GIT_ASKPASS",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_NO_LAZY_FETCH",
        "GIT_SSH",
        "GIT_SSH_VARIANT",
        "GIT_EXEC_PATH",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "SSH_ASKPASS",
        "SSH_ASKPASS_REQUIRE",
    }
)

# Always passed to git with -c. Why each one:
_GIT_CONFIG = (
    "core.hooksPath=/dev/null",  # no hooks, from the repository or anywhere else
    "core.fsmonitor=false",  # no fsmonitor hook program
    "protocol.allow=never",  # every transport refused …
    "protocol.ssh.allow=always",  # … but ssh
    "credential.helper=",  # no credential helper programs
    "init.templateDir=",  # new repositories get no template hooks or config
    "gc.auto=0",  # no detached background gc escaping the time limit;
    "maintenance.auto=false",  # the mirror runs gc explicitly
    "submodule.recurse=false",  # submodule URLs come from repository content: only ever
    "fetch.recurseSubmodules=false",  # fetched explicitly, with URLs from repolink.urls
    "safe.bareRepository=explicit",  # no bare repository discovered inside a checkout
)

_SSH_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+@-]*")
_KEY_LINE_MARKERS = (
    "PRIVATE KEY",
    "BEGIN OPENSSH",
    "BEGIN SSH2",
    "PuTTY-User-Key-File",
    "Private-Lines:",
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{48,}={0,2}")
_HEX_ONLY = re.compile(r"[0-9a-fA-F]+")
_LINE_BREAK = re.compile(rb"[\r\n]")


# -- environment and argv ---------------------------------------------------------------------


def hardened_env(home: Path, *, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The complete environment for a git or ssh child, built from scratch.

    Only ``PATH`` is taken from this process (its absolute entries). ``extra`` adds variables
    such as ``GIT_SSH_COMMAND`` or ``GIT_PROTOCOL``; it may not override the hardening
    (:class:`ValueError`, a programming error).
    """
    if not Path(home).is_absolute():
        raise ValueError(f"home must be an absolute path, got {str(home)!r}")
    env = {
        "PATH": _absolute_path_entries(os.environ.get("PATH", "")),
        "HOME": str(home),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_ALLOW_PROTOCOL": "ssh",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": _DEVNULL,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_NO_LAZY_FETCH": "1",
        "GIT_SSH_VARIANT": "ssh",
        "SSH_ASKPASS_REQUIRE": "never",
    }
    refuse_prompt = _false_program()
    if refuse_prompt is not None:
        env["GIT_ASKPASS"] = refuse_prompt
    for name, value in (extra or {}).items():
        if name in _PROTECTED_ENV or name.startswith(_PROTECTED_ENV_PREFIXES):
            raise ValueError(f"hardened_env: {name} may not be set through extra")
        env[name] = value
    return env


def ssh_command(
    *,
    key_path: Path,
    known_hosts_path: Path,
    connect_timeout: int,
    control_path: Path | None = None,
    port: int | None = None,
) -> list[str]:
    """The ssh argv (without destination): only ``key_path``, only ``known_hosts_path``.

    ``control_path`` turns on connection sharing (ControlMaster=auto, ControlPersist); it must
    sit in a directory only we can write. ``port`` is for running ssh directly; git adds its
    own ``-p`` from the URL. Paths must be absolute and free of whitespace, quotes and ``%``
    (ssh would expand it); they come from our own temp and data directories.
    """
    if isinstance(connect_timeout, bool) or connect_timeout <= 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds: {connect_timeout}")
    options = [
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "AddKeysToAgent=no",
        "PreferredAuthentications=publickey",
        "PubkeyAuthentication=yes",
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        "HostbasedAuthentication=no",
        "GSSAPIAuthentication=no",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={_ssh_safe_path(known_hosts_path, 'known_hosts_path')}",
        f"GlobalKnownHostsFile={_DEVNULL}",
        "UpdateHostKeys=no",
        "CheckHostIP=no",
        "VerifyHostKeyDNS=no",
        f"ConnectTimeout={int(connect_timeout)}",
        "ConnectionAttempts=1",
        f"ServerAliveInterval={SERVER_ALIVE_INTERVAL}",
        f"ServerAliveCountMax={SERVER_ALIVE_COUNT_MAX}",
        "ForwardAgent=no",
        "ForwardX11=no",
        "ClearAllForwardings=yes",
        "PermitLocalCommand=no",
        "ProxyCommand=none",
        "RequestTTY=no",
        "LogLevel=ERROR",
    ]
    if control_path is None:
        options += ["ControlMaster=no", "ControlPath=none"]
    else:
        safe_control = _ssh_safe_path(control_path, "control_path")
        if len(os.fsencode(safe_control)) > MAX_CONTROL_PATH_BYTES:
            raise ValueError(
                f"control_path is longer than {MAX_CONTROL_PATH_BYTES} bytes: {safe_control!r}"
            )
        options += [
            "ControlMaster=auto",
            f"ControlPath={safe_control}",
            f"ControlPersist={CONTROL_PERSIST}",
        ]
    argv = ["ssh", "-F", _DEVNULL]
    for option in options:
        argv += ["-o", option]
    if port is not None:
        if isinstance(port, bool) or not 0 < port <= 65535:
            raise ValueError(f"port must be 1..65535: {port}")
        argv += ["-p", str(port)]
    argv += ["-i", _ssh_safe_path(key_path, "key_path")]
    return argv


def git_ssh_command(
    *,
    key_path: Path,
    known_hosts_path: Path,
    connect_timeout: int,
    control_path: Path | None = None,
) -> str:
    """:func:`ssh_command` quoted for ``GIT_SSH_COMMAND`` (git runs it through ``sh -c``)."""
    return shlex.join(
        ssh_command(
            key_path=key_path,
            known_hosts_path=known_hosts_path,
            connect_timeout=connect_timeout,
            control_path=control_path,
        )
    )


def git_argv(*args: str, git_dir: Path | None = None) -> list[str]:
    """``git -c … [--git-dir=DIR] ARGS…``: the always-on settings come before the subcommand.

    Give a bare repository (a mirror) as ``git_dir``: with ``safe.bareRepository=explicit``
    git refuses to discover one from the working directory. Automatic gc is off; whoever owns
    a repository runs ``git gc`` / ``git maintenance run`` on it explicitly.
    """
    argv = ["git"]
    for setting in _GIT_CONFIG:
        argv += ["-c", setting]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    argv.extend(args)
    return argv


# -- the private key file ---------------------------------------------------------------------


KEY_DIR_PREFIX = "repolink-key-"


@contextlib.contextmanager
def private_key_file(key: bytes, *, base_dir: Path | None = None) -> Iterator[Path]:
    """Yield the path of a 0600 file holding ``key``, inside a fresh 0700 directory.

    The file is overwritten with zeros and removed, and the directory (with anything the caller
    put beside the key, such as the run's known_hosts file) deleted, even when the body raises.
    ``base_dir`` must be a path :func:`ssh_command` accepts (no whitespace, quotes or ``%``).
    """
    if not isinstance(key, bytes):
        raise TypeError("key must be bytes")
    parent = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
    remove_stale_key_directories(parent)
    directory = Path(tempfile.mkdtemp(prefix=f"{KEY_DIR_PREFIX}{os.getpid()}-", dir=parent))
    key_path = directory / "id"
    try:
        os.chmod(directory, 0o700)
        _write_new_private_file(key_path, key if key.endswith(b"\n") else key + b"\n")
        yield key_path
    finally:
        _wipe(key_path)
        shutil.rmtree(directory, ignore_errors=True)
        if directory.exists():
            log.warning("could not remove the key directory %s", directory)


def remove_stale_key_directories(parent: Path) -> list[Path]:
    """Wipe and remove key directories left by runs whose process died (SIGKILL, power loss).

    A directory is named after the pid of the process that made it; one whose process no
    longer exists, and that belongs to us, can only be a leftover. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        candidates = list(parent.glob(f"{KEY_DIR_PREFIX}*-*"))
    except OSError:
        return removed
    for directory in candidates:
        pid_text = directory.name[len(KEY_DIR_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or _process_exists(int(pid_text)):
            continue
        try:
            if directory.lstat().st_uid != os.getuid() or not directory.is_dir():
                continue
        except OSError:
            continue
        _wipe(directory / "id")
        shutil.rmtree(directory, ignore_errors=True)
        log.warning("removed a key directory left by dead process %s", pid_text)
        removed.append(directory)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_new_private_file(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only narrow, but be exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _wipe(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        size = os.fstat(fd).st_size
        os.write(fd, bytes(size))
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        path.unlink()


# -- running processes ------------------------------------------------------------------------


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
                "run `repolink doctor` to check URL, host key, key and access step by step",
            )
        return self


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float,
    input: bytes | None = None,
    on_stderr_line: Callable[[str], None] | None = None,
    on_stdout: Callable[[bytes], None] | None = None,
    kill_grace: float = DEFAULT_KILL_GRACE,
) -> CompletedRun:
    """Run ``argv`` to completion or until ``timeout`` seconds have passed.

    The child gets ``env`` as its whole environment (build it with :func:`hardened_env`),
    stdin from /dev/null unless ``input`` is given, no inherited file descriptors, and a new
    session, so that its whole process group can be stopped: on timeout SIGTERM, then SIGKILL
    after ``kill_grace`` seconds. Processes of the group still running when the child exits are
    stopped the same way (an ssh connection-sharing master is not one of them: ssh moves it
    into a session of its own, see :mod:`repolink.git.sharing`). A timeout is reported as
    ``timed_out=True``, not raised.

    ``on_stderr_line`` receives each stderr line as it arrives (split at ``\\r`` too: git's
    progress); ``on_stdout`` receives stdout chunks as they arrive, and ``stdout`` is then
    empty. Both are called from reader threads; an exception they raise stops the process and
    is re-raised here. Raises :class:`GitError` (``git_not_found``, ``ssh_not_found``,
    ``program_not_found``, ``process_start_failed``) when the program cannot be started.
    """
    argv = list(argv)
    if not argv:
        raise ValueError("argv is empty")
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

    timed_out = False
    try:
        if not _wait_for_exit(proc, timeout):
            timed_out = True
            log.warning("%s exceeded its %.0f s limit; stopping it", argv[0], timeout)
        _stop_group(proc, kill_grace)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=kill_grace)
        raise
    finally:
        for thread in threads:
            thread.join(timeout=kill_grace + 1)
            if thread.is_alive():
                log.warning("output of %s still open after it was stopped", argv[0])
        for stream in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()

    if failures:
        raise failures[0]
    stderr_lines.flush()
    return CompletedRun(
        returncode=proc.returncode,
        stdout=b"".join(stdout_chunks),
        stderr=stderr_lines.text(),
        timed_out=timed_out,
        duration=time.monotonic() - started,
    )


async def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None
) -> asyncio.subprocess.Process:
    """Start ``argv`` for a server: stdin, stdout and stderr are pipes, the environment is
    ``env`` only, no inherited file descriptors, its own session. Stop it with
    :func:`terminate`."""
    argv = list(argv)
    if not argv:
        raise ValueError("argv is empty")
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
    process: asyncio.subprocess.Process, *, grace: float = DEFAULT_KILL_GRACE
) -> int:
    """SIGTERM the process group of a :func:`spawn`-ed process, SIGKILL it after ``grace``
    seconds if anything of it is left; return the exit status."""
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


# -- scrubbing --------------------------------------------------------------------------------


def scrub(text: str, *, secrets_paths: Iterable[Path]) -> str:
    """``text`` with each of ``secrets_paths`` (pass the run's temp directories) replaced by
    ``<tmp>`` and every line that looks like key material removed."""
    paths: set[str] = set()
    for path in secrets_paths:
        for spelling in (str(path), os.path.realpath(path)):
            if spelling.strip("/"):
                paths.add(spelling.rstrip("/"))
    for spelling in sorted(paths, key=len, reverse=True):
        text = text.replace(spelling, "<tmp>")
    return "".join(line for line in text.splitlines(keepends=True) if not _looks_like_key(line))


def _looks_like_key(line: str) -> bool:
    if any(marker in line for marker in _KEY_LINE_MARKERS):
        return True
    # Object ids are long hex runs; key bodies are base64 and always have non-hex letters.
    return any(not _HEX_ONLY.fullmatch(run) for run in _BASE64_RUN.findall(line))


# -- internals --------------------------------------------------------------------------------


def _absolute_path_entries(path_value: str) -> str:
    entries: list[str] = []
    for entry in path_value.split(os.pathsep):
        if os.path.isabs(entry) and entry not in entries:
            entries.append(entry)
    return os.pathsep.join(entries) or SAFE_DEFAULT_PATH


def _false_program() -> str | None:
    for candidate in ("/bin/false", "/usr/bin/false"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _ssh_safe_path(path: Path, name: str) -> str:
    text = str(path)
    if not _SSH_SAFE_PATH.fullmatch(text):
        raise ValueError(
            f"{name} must be an absolute path of letters, digits and ._/+@- only: {text!r}"
        )
    return text


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

    thread = threading.Thread(target=pump, name=f"gitcli-read-{proc.pid}", daemon=True)
    thread.start()
    return thread


def _start_writer(stream: IO[bytes], data: bytes) -> threading.Thread:
    def feed() -> None:
        with contextlib.suppress(OSError):  # the child may exit without reading it all
            stream.write(data)
        with contextlib.suppress(OSError):
            stream.close()

    thread = threading.Thread(target=feed, name="gitcli-write", daemon=True)
    thread.start()
    return thread


def _wait_for_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until ``proc`` exits or ``timeout`` passes; True when it exited (and is reaped).

    ``Popen.wait(timeout)`` polls with sleeps growing to 50 ms, which adds up to 50 ms to
    every short git command; a pidfd (Linux 5.3+) wakes us the moment the child exits.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, or an old kernel: poll
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        waiter = select.poll()
        waiter.register(pidfd, select.POLLIN)
        if not waiter.poll(timeout * 1000):
            return False
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
