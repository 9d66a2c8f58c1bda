"""Helpers of the procrastinate tests: real workers on a real PostgreSQL database, in this
process (an asyncio task) or in a child process, and reading procrastinate's job table."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import psycopg

from repolink.jobs.procrastinate_backend import ProcrastinateJobs, conninfo

WAIT = 90.0


async def wait_until(check: Callable[[], bool], *, timeout: float = WAIT, what: str) -> None:
    """Poll ``check`` (in a thread: it reads the database) until it holds."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_worker(
    jobs: ProcrastinateJobs, *, concurrency: int = 2, queues: Iterable[str] | None = None
) -> AsyncIterator[None]:
    """A procrastinate worker (of ``queues``, default all) running in this event loop for the
    block."""
    task = asyncio.create_task(
        jobs.run_worker(concurrency=concurrency, name="test-worker", queues=queues)
    )
    try:
        await asyncio.sleep(0)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.contextmanager
def job_table(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the database, to read ``procrastinate_jobs``."""
    with psycopg.connect(conninfo(database_url), autocommit=True) as connection:
        yield connection


def jobs_of(database_url: str, task_name: str) -> list[dict[str, Any]]:
    """procrastinate's jobs of ``task_name``, oldest first."""
    with job_table(database_url) as connection:
        cursor = connection.execute(
            "SELECT id, status::text, lock, queueing_lock, args, attempts, scheduled_at"
            " FROM procrastinate_jobs WHERE task_name = %s ORDER BY id",
            (task_name,),
        )
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
