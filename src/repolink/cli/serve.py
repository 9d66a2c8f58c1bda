"""``repolink serve``: the whole service in one process — the HTTP API (platform, host,
webhooks, checkout keys), the embedded SSH host and the job workers (:mod:`repolink.server`).

It prints where everything is: the API, its docs page and OpenAPI document, the SSH host and
its key fingerprints, and on the very first start the site admin's one-time password.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from repolink import server
from repolink.cli._common import console, err_console, open_app, single_command_app

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.ssh.server import RunningSSHServer

log = logging.getLogger(__name__)

serve_app = single_command_app(
    "Run the service: HTTP API, SSH host and job workers, until SIGINT or SIGTERM."
)


@serve_app.callback(invoke_without_command=True)
def serve_command(
    listen: Annotated[
        str, typer.Option(help="Address of the HTTP API, HOST:PORT (port 0: any free port).")
    ] = server.DEFAULT_SERVICE_LISTEN,
    ssh_listen: Annotated[
        str,
        typer.Option(help="Address of the SSH host, HOST:PORT; 'off' to run no SSH host."),
    ] = server.DEFAULT_SSH_LISTEN,
    ssh_url: Annotated[
        str | None,
        typer.Option(
            help="How clients reach the SSH host, e.g. ssh://git@git.example.com:2222 "
            "(default: from --ssh-listen); used in API answers and webhook payloads."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=0, help="Fetches run at once; 0 runs none in this process.")
    ] = server.DEFAULT_WORKERS,
    no_workers: Annotated[
        bool,
        typer.Option(
            "--no-workers",
            help="Run no job in this process: it only queues them for `repolink worker` "
            "processes sharing its database.",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the service until SIGINT or SIGTERM: the platform API under /api/v1 (docs page at
    /api/docs), the built-in host's API under /host/api/2.0, webhook receivers under /hooks/,
    the embedded SSH host and the job workers. Stopping lets running jobs finish within
    REPOLINK_SHUTDOWN_GRACE seconds, then cancels them; they run again at the next start."""
    ssh_address = (
        None
        if ssh_listen.strip().lower() == "off"
        else server.parse_address(ssh_listen, "--ssh-listen")
    )
    options = server.ServerOptions(
        ssh_address=ssh_address,
        http_address=server.parse_address(listen, "--listen"),
        ssh_url=ssh_url,
        service=True,
        workers=0 if no_workers else workers,
        run_jobs=not no_workers,
    )
    server.configure_logging(log_level)
    with open_app() as application:
        server.check_host_storage(application)
        reporter = _ServeReporter(
            0 if no_workers else workers, first_start_password(application), no_workers
        )
        asyncio.run(server.serve(application, options, reporter=reporter))
    console.print("stopped")


def first_start_password(application: Repolink) -> str | None:
    """The site admin's one-time password when this start created the admin with a generated
    password, else ``None`` (``REPOLINK_ADMIN_PASSWORD`` given, or users exist already)."""
    configured = application.settings.admin_password
    return application.users.ensure_site_admin(
        configured.get_secret_value() if configured is not None else None
    )


class _ServeReporter:
    """What ``serve`` prints: where the APIs and the SSH host are, the host keys, the first
    start's admin password, and when it stops."""

    def __init__(self, workers: int, admin_password: str | None, no_workers: bool) -> None:
        self._workers = workers
        self._no_workers = no_workers
        self._admin_password = admin_password

    def ssh_started(self, ssh: RunningSSHServer, ssh_url_base: str) -> None:
        address = server.join_address(ssh.host, ssh.port)
        console.print(f"SSH server on {address}  (clone: {ssh_url_base}/WS/SLUG.git)", markup=False)
        for key in ssh.host_keys:
            console.print(f"  host key {key.key_type} {key.fingerprint_sha256}", markup=False)

    def http_started(self, url: str) -> None:
        base = url.removesuffix(server.SERVICE_API_PATH)
        console.print(f"HTTP API on {url}", markup=False)
        console.print(f"  docs     {base}/api/docs", markup=False)
        console.print(f"  OpenAPI  {url}/openapi.json", markup=False)
        console.print(f"  host API {base}{server.HOST_API_PATH}", markup=False)
        console.print(f"  health   {base}/healthz  {base}/readyz", markup=False)
        if self._no_workers:
            console.print(
                "workers: none (--no-workers): jobs run in `repolink worker`", markup=False
            )
        elif self._workers:
            console.print(f"workers: {self._workers} fetches at once", markup=False)
        else:
            console.print("workers: none (--workers 0): this process runs no fetch", markup=False)
        if self._admin_password is not None:
            console.print(
                f"site admin 'admin' created; one-time password: {self._admin_password}",
                markup=False,
            )
            console.print("  (shown this once: sign in and change it)", markup=False)

    def notice(self, text: str) -> None:
        err_console.print(text, markup=False)

    def stopping(self) -> None:
        console.print("stopping", markup=False)
