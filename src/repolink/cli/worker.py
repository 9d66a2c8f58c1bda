"""``repolink worker``: jobs only — fetches and the built-in host's webhook deliveries — with
no HTTP API and no SSH host (:mod:`repolink.server` with neither listener).

Any number of workers, on any machines, share one PostgreSQL database (``REPOLINK_DATABASE_URL``)
and the master key (``REPOLINK_SECRET_KEY``); there the jobs are procrastinate's. On the
embedded SQLite database a worker shares the data directory's file with ``serve``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from repolink import server
from repolink.cli._common import console, err_console, open_app, single_command_app

worker_app = single_command_app(
    "Run jobs only (fetches, webhook deliveries) until SIGINT or SIGTERM."
)


@worker_app.callback(invoke_without_command=True)
def worker_command(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs run at once by this process.")
    ] = server.DEFAULT_WORKERS,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run jobs only — fetches, the built-in host's webhook deliveries, polling — until SIGINT
    or SIGTERM, with no HTTP API and no SSH host: beside `repolink serve --no-workers`, any
    number of them on any machines sharing the PostgreSQL database and REPOLINK_SECRET_KEY.
    Stopping lets running jobs finish within REPOLINK_SHUTDOWN_GRACE seconds, then cancels
    them; another worker runs them again."""
    options = server.ServerOptions(
        ssh_address=None, http_address=None, service=True, workers=concurrency
    )
    server.configure_logging(log_level)
    with open_app() as application:
        backend = "procrastinate on PostgreSQL" if application.job_backend else "SQLite"
        console.print(f"worker: {concurrency} jobs at once ({backend})", markup=False)
        asyncio.run(server.serve(application, options, reporter=_WorkerReporter()))
    console.print("stopped")


class _WorkerReporter(server.SilentReporter):
    """What ``worker`` prints besides the log: notices, and when it stops."""

    def notice(self, text: str) -> None:
        err_console.print(text, markup=False)

    def stopping(self) -> None:
        console.print("stopping", markup=False)
