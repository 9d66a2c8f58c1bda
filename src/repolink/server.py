"""The server process: the HTTP API, the embedded SSH git server and the job workers, run
together.

``repolink serve`` (the whole service: platform API, host API, webhook receivers, every job
worker) and ``repolink host serve`` (the built-in host alone: its API and its webhook
deliveries) parse their options into :class:`ServerOptions` and call :func:`serve`;
everything between — what starts in which order, what a push sets off, how a signal stops it
all — lives here, built from one :class:`~repolink.app.Repolink`. A :class:`Server` can also be
started and closed by hand (a test, an embedding program). Which background work runs is the
application's business (:meth:`~repolink.app.Repolink.background_work`): this module knows no
job kind.

Order matters: the SSH server starts first, because the clone URL in API answers and webhook
payloads names the port it really bound (it may have been asked for port 0); then the
background work; then the HTTP API. Closing stops the HTTP API, then the background work, and
SSH last: a fetch may be reading from this server's own host (a project connected to a
hosted repository), and closing its connection under it would fail the fetch — an attempt
counted and retried — where the shutdown means to cancel it and run it again uncounted. The
pushes of the last SSH sessions are still announced: the push listeners only queue work, which
the next start carries out. The background work gets the grace period
(``REPOLINK_SHUTDOWN_GRACE``), after which its running jobs are cancelled and run again at the
next start.

asyncssh and uvicorn are imported when a server starts, never at import: the CLI imports this
module, and sshd runs OpenSSH mode's commands on every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import signal
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from repolink.errors import ValidationError
from repolink.logsafe import escape_records_of

if TYPE_CHECKING:
    from repolink.app import BackgroundWork, Repolink
    from repolink.host.events import RefUpdate
    from repolink.host.info import RepositoryInfo
    from repolink.ssh.server import RunningSSHServer

log = logging.getLogger(__name__)

DEFAULT_SSH_LISTEN = "127.0.0.1:2222"
DEFAULT_HTTP_LISTEN = "127.0.0.1:8081"
"""``host serve``'s HTTP API."""
DEFAULT_SERVICE_LISTEN = "127.0.0.1:8080"
"""``serve``'s HTTP API."""
DEFAULT_WORKERS = 4
HTTP_START_TIMEOUT = 30.0
SERVICE_API_PATH = "/api/v1"
HOST_API_PATH = "/host/api/2.0"

Address = tuple[str, int]


@dataclass(frozen=True)
class ServerOptions:
    """What to serve where. ``http_address`` ``None``: no HTTP API; ``ssh_address`` ``None``:
    no SSH server."""

    ssh_address: Address | None
    http_address: Address | None
    ssh_url: str | None = None
    """How clients reach the SSH server (``ssh://git@git.example.com:2222``); default: from
    the address bound."""
    service: bool = False
    """The whole service (``repolink serve``); else the built-in host alone (``host serve``)."""
    workers: int = DEFAULT_WORKERS
    """Fetches run at once (the whole service only); 0: this process runs none. On
    PostgreSQL: jobs of any kind at once."""
    run_jobs: bool = True
    """False (``serve --no-workers``): this process runs no job, only queues them for the
    workers (``repolink worker``) sharing its database."""
    shutdown_grace: float | None = None
    """Seconds running work gets to finish when the server stops; default: the settings'."""


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
        self._background: list[BackgroundWork] = []
        self._http: Any = None  # a uvicorn.Server
        self._http_task: asyncio.Task[None] | None = None
        self.ssh_url_base: str | None = None
        self.http_address: Address | None = None

    @property
    def ssh_port(self) -> int | None:
        return self._ssh.port if self._ssh is not None else None

    @property
    def shutdown_grace(self) -> float:
        grace = self._options.shutdown_grace
        return self._app.settings.shutdown_grace if grace is None else grace

    async def start(self) -> None:
        app, options = self._app, self._options
        if options.ssh_address is not None:
            # asyncssh is imported only here: see the module's docstring.
            from repolink.ssh.server import start_ssh_server

            # The background work is made once the SSH server listens (see the module's
            # docstring). No push can be reported before: nothing is awaited between the
            # server's start and the work's creation, and a push is reported by this same
            # event loop.
            self._ssh = await start_ssh_server(
                app,
                host=options.ssh_address[0],
                port=options.ssh_address[1],
                on_push=self._on_push,
            )
            self.ssh_url_base = options.ssh_url or default_ssh_url(
                options.ssh_address[0], self._ssh.port
            )
        else:
            self.ssh_url_base = options.ssh_url
        self._background = app.background_work(
            ssh_url_base=self.ssh_url_base,
            fetch_workers=max(options.workers, 0) if options.service else 0,
            run_jobs=options.run_jobs,
        )
        for part in self._background:
            await part.start()
        if self._ssh is not None:
            self._reporter.ssh_started(self._ssh, self.ssh_url_base or "")
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
                "check that the HTTP address is free, or run without the HTTP API",
            )

    async def close(self) -> None:
        """Stop what was started — HTTP, the background work within the shutdown grace, SSH
        (see the module's docstring for why in this order); safe after a failed start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_grace
        if self._http is not None:
            # uvicorn stops listening at once and gives open requests the grace (its
            # timeout_graceful_shutdown) before it cancels them.
            self._http.should_exit = True
            # The pages' event streams never end on their own: ended now, they let uvicorn
            # stop as soon as the other requests are answered (the scripts connect again).
            feed = self._app.__dict__.get("changes")
            if feed is not None:
                await feed.close()
        if self._http_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._http_task
        # The parts stay listed until SSH is closed: a push ending meanwhile is still told to
        # them, and they queue its work for the next start.
        left = max(deadline - loop.time(), 0.0)
        results = await asyncio.gather(
            *(part.stop(left) for part in reversed(self._background)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("background work failed to stop", exc_info=result)
        # Only now: the fetches stopped above may have been reading from this host.
        if self._ssh is not None:
            await self._ssh.close()
        self._background = []
        self._http = self._http_task = self._ssh = None

    async def _on_push(self, repository: RepositoryInfo, updates: Sequence[RefUpdate]) -> None:
        from repolink.app import PushListener

        for part in self._background:
            if isinstance(part, PushListener):
                await part.on_push(repository, updates)

    async def _start_http(self, address: Address, ssh_url_base: str | None) -> None:
        self._http = _http_server(
            self._app, address, ssh_url_base, self._options.service, self.shutdown_grace
        )
        if self._http is None:
            self._reporter.notice("the HTTP API is not available; serving SSH only")
            return
        self._http_task = asyncio.create_task(self._http.serve())
        self.http_address = await _http_started(self._http, self._http_task, address)
        path = SERVICE_API_PATH if self._options.service else HOST_API_PATH
        host, port = self.http_address
        self._reporter.http_started(f"http://{join_address(client_host(host), port)}{path}")


async def _http_started(server: Any, task: asyncio.Task[None], address: Address) -> Address:
    """Once uvicorn listens: the address it bound (the real port when asked for port 0)."""
    deadline = asyncio.get_running_loop().time() + HTTP_START_TIMEOUT
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            raise ValidationError(
                "http_server_failed",
                f"the HTTP API could not listen on {join_address(*address)}",
                "check that the address given for the HTTP API is free",
            )
        await asyncio.sleep(0.02)
    with contextlib.suppress(AttributeError, IndexError, OSError):
        return address[0], int(server.servers[0].sockets[0].getsockname()[1])
    return address


def _http_server(
    app: Repolink,
    address: Address,
    ssh_url_base: str | None,
    service: bool,
    shutdown_grace: float,
) -> Any:
    """The uvicorn server of the HTTP API, or ``None`` when its libraries are missing."""
    try:
        import uvicorn

        from repolink.http.guard import ConnectionGuard
        from repolink.http.host_api import create_host_api
        from repolink.http.service_app import create_service_app
    except ImportError:
        return None

    class UvicornServer(uvicorn.Server):
        """uvicorn leaves SIGINT/SIGTERM to us: one handler stops everything together."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    if service:
        api = create_service_app(app, ssh_url_base=ssh_url_base)
    else:
        api = create_host_api(app, ssh_url_base=ssh_url_base)
    # One guard for the one app: what an anonymous peer may hold of the server.
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
        # Where a request came from is read only as REPOLINK_TRUSTED_PROXIES says (the web
        # pages' kit): uvicorn's own X-Forwarded-For handling would trust any local peer.
        proxy_headers=False,
        # Whole seconds by uvicorn's signature; rounded up, never shorter than the grace.
        timeout_graceful_shutdown=math.ceil(shutdown_grace),
    )
    return UvicornServer(config)


def check_host_storage(app: Repolink) -> None:
    """Refuse a host storage that cannot be used (``host_storage_missing`` …) before a server
    starts anything — with or without an SSH host, since every server's host API creates
    repositories there — and before a first start makes the site admin, whose one-time
    password a refused start would never print."""
    from repolink.host.repo_storage import usable_storage

    usable_storage(app.settings)


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
