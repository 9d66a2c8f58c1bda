"""Moving bytes between an SSH session and the git process serving it.

Three copy loops — channel → git's stdin, git's stdout → channel, git's stderr → channel's
stderr — each moving whole buffers and waiting on backpressure from the slower side, so
memory stays bounded whatever the repository's size. (asyncssh's own ``redirect`` of asyncio
streams can start two readers on one stream when flow control flaps, which kills the
connection on large clones; these loops have no such state.)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from typing import Any

import asyncssh

from repolink.git.runner import GitRunner

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
_CHANNEL_GONE = (OSError, asyncssh.Error)


class Stopped(enum.Enum):
    """Why a relay stopped its git child before it exited."""

    CLIENT_GONE = "the client went away"
    TIME_LIMIT = "it ran past the time limit"
    IDLE = "no data moved"


class _Activity:
    """When a byte last moved, either way."""

    def __init__(self) -> None:
        self.last = asyncio.get_running_loop().time()

    def moved(self) -> None:
        self.last = asyncio.get_running_loop().time()


async def relay(
    process: asyncssh.SSHServerProcess[bytes],
    child: asyncio.subprocess.Process,
    *,
    time_limit: float,
    idle_timeout: float,
    kill_grace: float,
    runner: GitRunner,
) -> int | Stopped:
    """Connect ``child`` to the session until it exits; its exit status.

    Or why it was stopped first — the client went away, ``time_limit`` passed, or no byte
    moved for ``idle_timeout`` seconds: then the child's whole process group has been stopped
    (by ``runner``, which started it).
    """
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    activity = _Activity()
    to_child = asyncio.ensure_future(_channel_to_child(process.stdin, child.stdin, activity))
    output = asyncio.ensure_future(
        asyncio.gather(
            _child_to_channel(child.stdout, process.stdout, activity),
            _child_to_channel(child.stderr, process.stderr, activity),
        )
    )
    closed = asyncio.ensure_future(process.channel.wait_closed())
    loop = asyncio.get_running_loop()
    try:
        waiters: set[asyncio.Future[Any]] = {output, closed}
        deadline = loop.time() + time_limit
        stopped: Stopped | None = None
        while stopped is None:
            idle_end = activity.last + idle_timeout
            await asyncio.wait(
                waiters,
                timeout=max(0.0, min(deadline, idle_end) - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if output.done() and output.exception() is None:
                # git closed its output: it is exiting, and everything it wrote has been sent.
                return await child.wait()
            now = loop.time()
            if output.done() or closed.done():
                stopped = Stopped.CLIENT_GONE
            elif now >= deadline:
                stopped = Stopped.TIME_LIMIT
            elif now >= activity.last + idle_timeout:
                stopped = Stopped.IDLE
        await runner.terminate(child, grace=kill_grace)
        return stopped
    finally:
        for task in (to_child, output, closed):
            task.cancel()
        await asyncio.gather(to_child, output, closed, return_exceptions=True)
        # A task cancelled before it first ran never reaches its own cleanup: without this the
        # child's stdin pipe could outlive the event loop (asyncio then complains at exit).
        with contextlib.suppress(OSError):
            child.stdin.close()
        if child.returncode is not None:
            # An output pipe whose reading paused (its buffer full when the client stopped
            # reading) never sees its end by itself, and the child's transport then outlives
            # the event loop: read what is left of it, up to the end git's death put there.
            await asyncio.gather(
                _discard(child.stdout, kill_grace), _discard(child.stderr, kill_grace)
            )


async def _discard(source: asyncio.StreamReader, timeout: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError, OSError):
        async with asyncio.timeout(timeout):
            while await source.read(CHUNK):
                pass


async def _child_to_channel(
    source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes], activity: _Activity
) -> None:
    while data := await source.read(CHUNK):
        activity.moved()
        sink.write(data)
        await sink.drain()


async def _channel_to_child(
    source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter, activity: _Activity
) -> None:
    try:
        while True:
            try:
                data = await source.read(CHUNK)
            except (asyncssh.SignalReceived, asyncssh.BreakReceived):
                continue  # git services take no signals from clients
            if not data:
                break
            activity.moved()
            sink.write(data)
            await sink.drain()
    except _CHANNEL_GONE:
        # The channel closed, or git stopped reading because it is done: nothing to forward.
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()
