"""The server process: the SSH git server, the host HTTP API and the job workers, run together.

``repolink host serve`` parses its options into :class:`ServerOptions` and calls
:func:`serve`; everything between — what starts in which order, what a push sets off, how
a signal stops it all — lives here, built from one :class:`~repolink.app.Repolink`. A
:class:`Server` can also be started and closed by hand (a test, an embedding program).

Order matters: the SSH server starts first, because the clone URL in API answers and webhook
payloads names the port it really bound (it may have been asked for port 0); then the job
workers; then the HTTP API. Closing stops the HTTP API, then SSH, and the workers last, so the
pushes of the last SSH sessions are still announced.

asyncssh and uvicorn are imported when a server starts, never at import: the CLI imports this
module, and sshd runs OpenSSH mode's commands on every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from repolink.errors import ValidationError
from repolink.logsafe import escape_records_of

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.host.events import RefUpdate
    from repolink.host.info import RepositoryInfo
    from repolink.host.webhooks import DeliveryWorker
    from repolink.ssh.server import RunningSSHServer

log = logging.getLogger(__name__)

DEFAULT_SSH_LISTEN = "127.0.0.1:2222"
DEFAULT_HTTP_LISTEN = "127.0.0.1:8081"
HTTP_START_TIMEOUT = 30.0

Address = tuple[str, int]


@dataclass(frozen=True)
class ServerOptions:
    """What to serve where. ``http_address`` ``None``: SSH only."""

    ssh_address: Address
    http_address: Address | None
    ssh_url: str | None = None
    """How clients reach the SSH server (``ssh://git@git.example.com:2222``); default: from
    the address bound."""


class ServerReporter(Protocol):
    """Hears what the server does, to tell the operator (the CLI prints it)."""

    def ssh_started(self, ssh: RunningSSHServer, ssh_url_base: str) -> None: ...

    def http_started(self, url: str) -> None: ...

    def notice(self, text: str) -> None:
        """Something the operator should know that is no failure (a part left out)."""
        ...

    def stopping(self) -> None: ...


class SilentReporter:
    """A reporter that tells no one; the log still does."""

    def ssh_started(self, ssh: RunningSSHServer, ssh_url_base: str) -> None:
        log.info("SSH server on %s", join_address(ssh.host, ssh.port))

    def http_started(self, url: str) -> None:
        log.info("HTTP API on %s", url)

    def notice(self, text: str) -> None:
        log.warning("%s", text)

    def stopping(self) -> None:
        log.info("stopping")


async def serve(
    app: Repolink,
    options: ServerOptions,
    *,
    reporter: ServerReporter | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the server until ``stop`` is set — by default, until SIGINT or SIGTERM arrives.

    Raises ``http_server_failed`` when the HTTP API cannot listen or ends on its own.
    """
    reporter = reporter or SilentReporter()
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    raise_open_files_limit()
    server = Server(app, options, reporter=reporter)
    try:
        await server.start()
        await server.wait(stop)
    finally:
        reporter.stopping()
        await server.close()


class Server:
    """One server's parts, started by :meth:`start` and closed by :meth:`close`."""

    def __init__(
        self, app: Repolink, options: ServerOptions, *, reporter: ServerReporter | None = None
    ) -> None:
        self._app = app
        self._options = options
        self._reporter = reporter or SilentReporter()
        self._ssh: RunningSSHServer | None = None
        self._worker: DeliveryWorker | None = None
        self._http: Any = None  # a uvicorn.Server
        self._http_task: asyncio.Task[None] | None = None
        self.ssh_url_base: str | None = None
        self.http_address: Address | None = None

    @property
    def ssh_port(self) -> int | None:
        return self._ssh.port if self._ssh is not None else None

    async def start(self) -> None:
        # asyncssh is imported only here: see the module's docstring.
        from repolink.ssh.server import start_ssh_server

        app, options = self._app, self._options
        # The worker is made once the SSH server listens (see the module's docstring). No push
        # can be reported before: nothing is awaited between the server's start and the
        # worker's creation, and a push is reported by this same event loop.
        self._ssh = await start_ssh_server(
            app,
            host=options.ssh_address[0],
            port=options.ssh_address[1],
            on_push=self._on_push,
        )
        self.ssh_url_base = options.ssh_url or default_ssh_url(
            options.ssh_address[0], self._ssh.port
        )
        self._worker = _delivery_worker(app, self.ssh_url_base)
        if self._worker is not None:
            await self._worker.start()
        self._reporter.ssh_started(self._ssh, self.ssh_url_base)
        if options.http_address is not None:
            await self._start_http(options.http_address, self.ssh_url_base)

    async def wait(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set, or the HTTP server ends on its own (e.g. its port was taken)."""
        http_task = self._http_task
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
        if http_task is not None:
            waiters.add(http_task)
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            if waiter is not http_task:
                waiter.cancel()
        if http_task is not None and http_task in done and not stop.is_set():
            raise ValidationError(
                "http_server_failed",
                "the HTTP API server stopped (see the log above)",
                "check that the --http address is free, or run with --http off",
            )

    async def close(self) -> None:
        """Stop what was started, HTTP first and the workers last; safe after a failed start."""
        if self._http is not None:
            self._http.should_exit = True
        if self._http_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._http_task
        if self._ssh is not None:
            await self._ssh.close()
        if self._worker is not None:
            await self._worker.stop()
        self._http = self._http_task = self._ssh = self._worker = None

    async def _on_push(self, repository: RepositoryInfo, updates: list[RefUpdate]) -> None:
        if self._worker is not None:
            await self._worker.on_push(repository, updates)

    async def _start_http(self, address: Address, ssh_url_base: str) -> None:
        self._http = _http_server(self._app, address, ssh_url_base, self._reporter)
        if self._http is None:
            return
        self._http_task = asyncio.create_task(self._http.serve())
        self.http_address = await _http_started(self._http, self._http_task, address)
        self._reporter.http_started(f"http://{join_address(*self.http_address)}/host/api/2.0")


async def _http_started(server: Any, task: asyncio.Task[None], address: Address) -> Address:
    """Once uvicorn listens: the address it bound (the real port when asked for port 0)."""
    deadline = asyncio.get_running_loop().time() + HTTP_START_TIMEOUT
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            raise ValidationError(
                "http_server_failed",
                f"the HTTP API could not listen on {join_address(*address)}",
                "check that the --http address is free, or run with --http off",
            )
        await asyncio.sleep(0.02)
    with contextlib.suppress(AttributeError, IndexError, OSError):
        return address[0], int(server.servers[0].sockets[0].getsockname()[1])
    return address


def _delivery_worker(app: Repolink, ssh_url_base: str) -> DeliveryWorker | None:
    try:
        return app.delivery_worker(ssh_url_base=ssh_url_base)
    except ImportError:  # the HTTP/webhook side is optional
        return None


def _http_server(
    app: Repolink, address: Address, ssh_url_base: str, reporter: ServerReporter
) -> Any:
    try:
        import uvicorn

        from repolink.http.guard import ConnectionGuard
        from repolink.http.host_api import create_host_api
    except ImportError:
        reporter.notice("the host HTTP API is not available; serving SSH only")
        return None

    class UvicornServer(uvicorn.Server):
        """uvicorn leaves SIGINT/SIGTERM to us: one handler stops SSH and HTTP together."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    api = create_host_api(app, ssh_url_base=ssh_url_base)
    guard = ConnectionGuard(
        request_timeout=app.settings.http_request_timeout,
        max_connections=app.settings.http_max_connections,
    )
    config = uvicorn.Config(
        api,
        host=address[0],
        port=address[1],
        log_config=None,
        access_log=False,
        http=guard.protocol(),
    )
    return UvicornServer(config)


def raise_open_files_limit() -> None:
    """Let this process open as many descriptors as the system lets it (the soft limit, often
    1024, up to the hard one): HTTP and SSH connections each hold one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        log.debug("open files limit raised from %d to %d", soft, hard)


# -- options --------------------------------------------------------------------------------


def parse_address(text: str, option: str) -> Address:
    """``HOST:PORT`` (``[::1]:PORT`` too) as given to ``option``, or ``listen_address_invalid``."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValidationError(
            "listen_address_invalid",
            f"{option} must be HOST:PORT",
            f"for example {option} 127.0.0.1:2222 (port 0 picks a free port)",
        )
    return host, int(port_text)


def configure_logging(level: str) -> None:
    """Send logs to stderr at ``level``; asyncssh's and Alembic's chatter only when debugging
    (repolink logs the migration it ran itself)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValidationError(
            "log_level_invalid", "unknown log level", "use debug, info, warning or error"
        )
    # The server is the application: it, and only it, decides where logs go.
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Clients choose paths, commands and names: whatever logs them, a record stays one line.
    for handler in logging.getLogger().handlers:
        escape_records_of(handler)
    if numeric > logging.DEBUG:
        for chatty in ("asyncssh", "alembic"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def client_host(host: str) -> str:
    """The host name clients type for a server bound to ``host``: the address itself, or for
    a wildcard address this machine's name."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            return socket.getfqdn()
    return host


def default_ssh_url(host: str, port: int) -> str:
    """``ssh://git@HOST[:PORT]`` for a server bound to ``host:port``; a wildcard address
    becomes this machine's name."""
    host = client_host(host)
    address = f"[{host}]" if ":" in host else host
    return f"ssh://git@{address}" + ("" if port == 22 else f":{port}")
