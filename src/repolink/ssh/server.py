"""The embedded SSH server of the built-in host (asyncssh).

It speaks to git clients only: user ``git``, public-key authentication, and one exec request
per session naming a git service and one repository. Everything else an SSH client may ask
for — a shell, a pty, a subsystem, forwarding of ports, agents or X11, environment variables
other than ``GIT_PROTOCOL`` — is refused. Keys are looked up on every authentication and
authorized again on every command, so a removed key stops working at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh
from asyncssh.constants import OPEN_ADMINISTRATIVELY_PROHIBITED
from asyncssh.sftp import MIN_SFTP_VERSION

from repolink.app import Repolink
from repolink.errors import RepolinkError, ValidationError
from repolink.git.runner import GitRunner
from repolink.host.error_texts import service_idle, too_many_processes, too_many_sessions
from repolink.host.events import RefUpdate
from repolink.host.git_commands import AuthorizedCommand, GitCommands
from repolink.host.info import RepositoryInfo
from repolink.host.service import HostService
from repolink.keys.fingerprints import fingerprint_sha256
from repolink.logsafe import escape_records_of, escaped
from repolink.ssh.limits import Admission, ConnectionGate, KeyProcesses, SSHLimits
from repolink.ssh.refusals import refusal_line
from repolink.ssh.relay import Stopped, relay
from repolink.ssh.server_keys import HostKey, ensure_host_keys

log = logging.getLogger(__name__)

PushCallback = Callable[[RepositoryInfo, list[RefUpdate]], Awaitable[None]]

GIT_USER = "git"
# A git service is not killed for taking long (a huge clone over a slow link is legitimate),
# only when its client goes away, or after this very generous bound.
SERVICE_TIME_LIMIT = 6 * 3600.0
KILL_GRACE = 5.0
REFUSALS_REPORTED_EVERY = 60.0
WINDOW = 8 * 1024 * 1024
ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)
_FINGERPRINT_INFO = "repolink_key_fingerprint"
_EXIT_REFUSED = 1


@dataclass
class RunningSSHServer:
    """A listening server; :meth:`close` stops it and ends its connections."""

    host: str
    port: int
    host_keys: list[HostKey]
    _acceptor: asyncssh.SSHAcceptor
    _context: _ServerContext

    @property
    def host_key_fingerprints(self) -> list[str]:
        return [key.fingerprint_sha256 for key in self.host_keys]

    def known_hosts_lines(self, host: str | None = None) -> list[str]:
        return [key.known_hosts_line(host or self.host, self.port) for key in self.host_keys]

    async def close(self) -> None:
        self._acceptor.close()
        await self._acceptor.wait_closed()
        await self._context.close()
        log.info("SSH server on %s:%d stopped", self.host, self.port)


@dataclass
class _ServerContext:
    """What every connection of one server shares."""

    service: HostService
    commands: GitCommands
    runner: GitRunner
    on_push: PushCallback | None
    limits: SSHLimits
    gate: ConnectionGate
    key_processes: KeyProcesses
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    sessions: set[asyncio.Task[Any]] = field(default_factory=set)

    def track_session(self) -> None:
        """Count the running command's task in, so :meth:`close` waits for it: a server that
        stops must not leave its git children running (they have sessions of their own)."""
        task = asyncio.current_task()
        if task is not None:
            self.sessions.add(task)
            task.add_done_callback(self.sessions.discard)

    def run_in_background(self, work: Awaitable[None], what: str) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, what))

    def _finished(self, task: asyncio.Task[Any], what: str) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", what, exc_info=task.exception())

    async def close(self) -> None:
        for connection in list(self.connections):
            connection.close()
        for connection in list(self.connections):
            await connection.wait_closed()
        # A command whose client went away stops its git child within KILL_GRACE; a command
        # that ends meanwhile may start a push hook, so commands are waited for first.
        deadline = asyncio.get_running_loop().time() + KILL_GRACE + 5
        for pending in (self.sessions, self.tasks):
            while pending and (left := deadline - asyncio.get_running_loop().time()) > 0:
                await asyncio.wait(set(pending), timeout=left)
        if self.sessions or self.tasks:
            log.warning(
                "stopped with %d commands and %d push hooks still running",
                len(self.sessions),
                len(self.tasks),
            )


async def start_ssh_server(
    app: Repolink,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_push: PushCallback | None = None,
    limits: SSHLimits | None = None,
) -> RunningSSHServer:
    """Listen on ``host:port`` (0: any free port) and serve git over SSH until closed;
    ``limits`` default to the application's settings."""
    limits = limits or SSHLimits.from_settings(app.settings)
    # asyncssh logs a client's command as it came (at INFO); it may hold a newline or a NUL.
    escape_records_of(logging.getLogger("asyncssh"))
    host_keys = await asyncio.to_thread(ensure_host_keys, app.settings)
    private_keys = [asyncssh.import_private_key(key.path.read_bytes()) for key in host_keys]
    context = _ServerContext(
        app.host,
        app.git_commands,
        app.runner,
        on_push,
        limits,
        ConnectionGate(limits),
        KeyProcesses(limits.max_processes_per_key),
    )
    acceptor = await asyncssh.create_server(
        lambda: _GitSSHServer(context),
        host,
        port,
        server_host_keys=private_keys,
        encoding=None,
        allow_pty=False,
        x11_forwarding=False,
        agent_forwarding=False,
        allow_scp=False,
        line_editor=False,
        login_timeout=limits.login_grace_time,
        window=WINDOW,
        encryption_algs=ENCRYPTION_ALGS,
        compression_algs=None,
    )
    running = RunningSSHServer(host, acceptor.get_port(), host_keys, acceptor, context)
    log.info(
        "SSH server listening on %s:%d (host keys %s)",
        host,
        running.port,
        ", ".join(running.host_key_fingerprints),
    )
    return running


class _GitSSHServer(asyncssh.SSHServer):
    """One client connection: admission, authentication and its sessions; commands go to
    :func:`_serve_process`."""

    def __init__(self, context: _ServerContext) -> None:
        self._context = context
        self._connection: asyncssh.SSHServerConnection | None = None
        self._admission: Admission | None = None
        self._peer = "?"
        self._sessions: set[asyncio.Future[None]] = set()

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        peer = conn.get_extra_info("peername")
        source = str(peer[0]) if peer else "?"
        if peer:
            self._peer = f"{peer[0]}:{peer[1]}"
        admission = self._context.gate.admit(source)
        if isinstance(admission, str):
            # Before asyncssh sends its version: a connection over a cap costs no handshake.
            conn.abort()
            _log_refused_connection(self._context.gate, self._peer, admission)
            return
        self._admission = admission
        self._connection = conn
        self._context.connections.add(conn)

    def auth_completed(self) -> None:
        if self._admission is not None:
            self._admission.authenticated()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admission is not None:
            self._admission.closed()
        if self._connection is not None:
            self._context.connections.discard(self._connection)

    def session_requested(
        self,
    ) -> tuple[asyncssh.SSHServerChannel[bytes], asyncssh.SSHServerProcess[bytes]]:
        assert self._connection is not None
        limit = self._context.limits.max_sessions
        if len(self._sessions) >= limit:
            error = too_many_sessions(limit)
            log.info(
                "ssh session refused: peer %s, key %s, %s",
                self._peer,
                self._connection.get_extra_info(_FINGERPRINT_INFO),
                error.code,
            )
            raise asyncssh.ChannelOpenError(
                OPEN_ADMINISTRATIVELY_PROHIBITED, refusal_line(error).strip()
            )
        channel: asyncssh.SSHServerChannel[bytes] = self._connection.create_server_channel()
        # A session counts until its channel closes, whether or not it ever ran a command.
        open_session = asyncio.ensure_future(channel.wait_closed())
        self._sessions.add(open_session)
        open_session.add_done_callback(self._sessions.discard)
        context = self._context
        process: asyncssh.SSHServerProcess[bytes] = asyncssh.SSHServerProcess(
            lambda process: _serve_process(context, process), None, MIN_SFTP_VERSION, False
        )
        return channel, process

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate, even when the user name is wrong

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Called for the probe and again for the signed attempt, always right before asyncssh
        # checks that signature: the last key accepted here is the one authenticated.
        fingerprint = fingerprint_sha256(key.public_data)
        if username != GIT_USER:
            log.info("ssh auth refused: peer %s, user is not %r", self._peer, GIT_USER)
            return False
        known = await asyncio.to_thread(self._context.service.is_known_key, fingerprint)
        if not known:
            log.info("ssh auth refused: peer %s, unknown key %s", self._peer, fingerprint)
            return False
        assert self._connection is not None
        self._connection.set_extra_info(**{_FINGERPRINT_INFO: fingerprint})
        return True


def _log_refused_connection(gate: ConnectionGate, peer: str, cap: str) -> None:
    refused = gate.refusals_to_report(asyncio.get_running_loop().time(), REFUSALS_REPORTED_EVERY)
    if refused:
        log.warning(
            "ssh connection from %s closed on arrival: %s reached (%d refused since the last "
            "report)",
            peer,
            cap,
            refused,
        )


async def _serve_process(
    context: _ServerContext, process: asyncssh.SSHServerProcess[bytes]
) -> None:
    context.track_session()
    fingerprint: str = process.get_extra_info(_FINGERPRINT_INFO)
    processes = context.key_processes
    if not processes.start(fingerprint):
        _refuse(process, fingerprint, too_many_processes(context.limits.max_processes_per_key))
        return
    try:
        await _serve_command(context, process, fingerprint)
    finally:
        processes.finished(fingerprint)


def _refuse(
    process: asyncssh.SSHServerProcess[bytes], fingerprint: str, error: RepolinkError
) -> None:
    log.info("ssh command refused: key %s, %s: %s", fingerprint, error.code, escaped(error.message))
    _answer(process, error)


def _answer(process: asyncssh.SSHServerProcess[bytes], error: RepolinkError) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already
        process.stderr.write(refusal_line(error).encode("utf-8", "replace"))
        process.exit(_EXIT_REFUSED)


async def _serve_command(
    context: _ServerContext, process: asyncssh.SSHServerProcess[bytes], fingerprint: str
) -> None:
    try:
        if process.subsystem is not None:
            raise ValidationError(
                "subsystem_refused", "this host serves git only; subsystems are not provided"
            )
        # One trip to a worker thread per command: every command pays for it, the ref
        # listing of a refresh too.
        authorized = await asyncio.to_thread(
            context.commands.authorize,
            fingerprint,
            process.command,
            git_protocol=process.env.get("GIT_PROTOCOL"),
        )
    except RepolinkError as exc:
        if exc.code != "shell_refused":
            _refuse(process, fingerprint, exc)
            return
        # A session without a command is how `ssh -T` and repolink doctor's auth check prove
        # that a key logs in: they get the line a Git host greets with, and the operator gets
        # no refusal to look into.
        log.info("ssh authenticated, shell greeting sent: key %s", fingerprint)
        _answer(process, exc)
        return
    except Exception:
        log.exception("ssh command of key %s failed", fingerprint)
        _internal_error(process)
        return
    try:
        await _run_git_service(context, process, authorized)
    except Exception:
        log.exception("ssh %s failed", authorized.describe())
        _internal_error(process)


def _internal_error(process: asyncssh.SSHServerProcess[bytes]) -> None:
    with contextlib.suppress(Exception):
        process.stderr.write(b"repolink: internal error of the host; see its log\n")
        process.exit(_EXIT_REFUSED)


async def _run_git_service(
    context: _ServerContext,
    process: asyncssh.SSHServerProcess[bytes],
    authorized: AuthorizedCommand,
) -> None:
    commands = context.commands
    what = authorized.describe()
    # Reads skip the thread trip: most commands are reads.
    pushing = authorized.pushing
    before = await asyncio.to_thread(commands.refs_before, authorized) if pushing else {}
    child = await context.runner.spawn(authorized.argv, env=authorized.env)
    status = await relay(
        process,
        child,
        time_limit=SERVICE_TIME_LIMIT,
        idle_timeout=context.limits.idle_timeout,
        kill_grace=KILL_GRACE,
        runner=context.runner,
    )
    if status is Stopped.IDLE:
        _refuse(process, authorized.fingerprint, service_idle(context.limits.idle_timeout))
        return
    if isinstance(status, Stopped):
        log.info("ssh %s: stopped, %s", what, status.value)
        process.close()
        return
    process.exit(status)
    grant = authorized.grant
    log.info("ssh %s (%s key %d): exit %d", what, grant.key_kind, grant.key_id, status)
    if context.on_push is None or not pushing or status != 0:
        return
    updates = await asyncio.to_thread(commands.after_push, authorized, before, status)
    if updates:
        repository = grant.repository
        context.run_in_background(
            context.on_push(repository, updates), f"push hook of {repository.full_name}"
        )
