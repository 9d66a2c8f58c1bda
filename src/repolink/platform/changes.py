"""The change feed: "the commit index or the fetch state of project P's connection changed",
told to the requests of this process waiting for it (the pages' live updates,
:mod:`repolink.web.live`).

A waiter opens a :class:`Watch` on a project *before* it reads what it shows, reads, and waits;
a wake-up means "read again", never "this is what changed": the reader compares, so a wake-up
too many costs one read and none is ever needed to be exact.

- **PostgreSQL**: the database itself announces every change, whichever process made it —
  ``pg_notify('repolink_changes', <project id>)`` from the triggers of
  :mod:`repolink.store.change_triggers`, delivered when the writing transaction commits. One
  ``LISTEN``ing psycopg connection per process (started by the first watch) fans each
  notification out to the watches of its project. When that connection is lost (the database
  restarted) it is opened again after 0.5, 1, 2, 5 s; notifications sent meanwhile are lost,
  so every watch is woken when it is lost and again once it listens, and until then waiters
  read again every ``poll_interval`` (:attr:`ChangeFeed.live` is false).
- **SQLite**: one process serves, but the CLI may write too. Every write transaction committed
  by this process wakes every watch (:meth:`ChangeFeed.poke`, from the store's engine), and
  waiters read again every ``poll_interval`` for the writes of other processes.

:meth:`ChangeFeed.close` ends every watch, so that the streams built on them end and the HTTP
server stops without waiting for them; the next watch opens the feed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from repolink.store.change_triggers import CHANNEL

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)
APPLICATION = "repolink-changes"
"""The listening connection's ``application_name`` (``pg_stat_activity``)."""
LISTEN_CHECK = 30.0
"""Seconds without a notification after which the listening connection is checked alive."""


class Watch:
    """One waiter's subscription to the changes of one project."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.closed = False
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    @property
    def woken(self) -> bool:
        """Whether a wake-up waits to be taken by :meth:`wait`."""
        return self._woken.is_set()

    async def wait(self, timeout: float) -> bool:
        """Until a change may have happened (``True``) or ``timeout`` seconds passed."""
        try:
            await asyncio.wait_for(self._woken.wait(), timeout)
        except TimeoutError:
            return False
        self._woken.clear()
        return True


class ChangeFeed:
    """The changes of this process's database, told to the watches of this process.

    ``conninfo``: the libpq connection string of the PostgreSQL database to ``LISTEN`` on;
    ``None`` (SQLite): nothing to listen to, :meth:`poke` and polling only. ``heartbeat``:
    seconds a waiter waits for a notification before it reads again anyway; ``poll_interval``:
    seconds between reads while no notification can be trusted to come."""

    def __init__(self, conninfo: str | None, *, heartbeat: float, poll_interval: float) -> None:
        self._conninfo = conninfo
        self._heartbeat = heartbeat
        self._poll_interval = poll_interval
        self._watches: dict[str, set[Watch]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = False
        self._poke_pending = False
        self._closed = False

    @property
    def live(self) -> bool:
        """Whether changes are told as they happen (PostgreSQL, listening)."""
        return self._listening

    @property
    def wait_timeout(self) -> float:
        """How long a waiter waits before it reads again anyway."""
        return self._heartbeat if self.live else self._poll_interval

    @contextlib.asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[Watch]:
        """A watch on project ``key`` (its id) for the block; open it before the first read."""
        self._attach()
        watch = Watch(key)
        self._watches.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches.get(key)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[key]

    def changed(self, key: str) -> None:
        """Project ``key`` changed: wake its watches (the event loop's thread only)."""
        for watch in self._watches.get(key, ()):
            watch.wake()

    def poke(self) -> None:
        """Something may have changed (a write of this process): wake every watch. Safe from
        any thread; wake-ups pending together are one."""
        loop = self._loop
        if loop is None or self._poke_pending or not self._watches:
            return
        self._poke_pending = True
        try:
            loop.call_soon_threadsafe(self._poked)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            self._poke_pending = False

    def _poked(self) -> None:
        self._poke_pending = False
        self._wake_all()

    def _wake_all(self) -> None:
        for watches in list(self._watches.values()):
            for watch in watches:
                watch.wake()

    def _attach(self) -> None:
        """Open the feed on the running event loop (again after :meth:`close`, or when the
        loop it ran on has gone), with its listener on PostgreSQL."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._closed:
            # A listener of a loop gone went with it; close() cancelled this loop's.
            self._loop, self._closed, self._listener, self._listening = loop, False, None, False
        listener = self._listener
        if self._conninfo is not None and (listener is None or listener.done()):
            self._listener = loop.create_task(self._listen(self._conninfo))

    async def close(self) -> None:
        """End every watch (their waiters wake, see ``closed`` and stop) and stop listening."""
        self._closed = True
        for watches in self._watches.values():
            for watch in watches:
                watch.closed = True
                watch.wake()
        listener, self._listener = self._listener, None
        if listener is not None and not listener.done():
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        self._listening = False

    async def _listen(self, conninfo: str) -> None:
        """LISTEN until closed, reconnecting when the connection is lost."""
        import psycopg  # only where there is PostgreSQL to listen to

        failures = 0
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=10, application_name=APPLICATION
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self._listening, failures = True, 0
                    log.debug("listening for changes")
                    # What was announced while nobody listened is lost: everyone reads again.
                    self._wake_all()
                    await self._relay(connection)
            except (psycopg.Error, OSError) as exc:
                log.warning("listening for changes failed, reconnecting: %s", exc)
            finally:
                if self._listening:
                    self._listening = False
                    self._wake_all()
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def _relay(self, connection: object) -> None:
        from psycopg import AsyncConnection

        assert isinstance(connection, AsyncConnection)
        while not self._closed:
            async for note in connection.notifies(timeout=LISTEN_CHECK):
                self.changed(note.payload)
            # Quiet for a while: a connection gone without a word fails this.
            await connection.execute("SELECT 1")
