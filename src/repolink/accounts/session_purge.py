"""Ended sessions' rows deleted in a server's background, once at start and then every
:data:`PURGE_INTERVAL`: a session nobody comes back to is otherwise only deleted at the next
sign-in (:meth:`~repolink.accounts.sessions.SessionService.purge_expired`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from repolink.accounts.sessions import SessionService
from repolink.errors import RepolinkError

log = logging.getLogger(__name__)

PURGE_INTERVAL = 3600.0


class SessionPurge:
    """A background part of ``serve`` (:meth:`repolink.app.Repolink.background_work`)."""

    def __init__(self, sessions: SessionService, *, interval: float = PURGE_INTERVAL) -> None:
        self._sessions = sessions
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="repolink-session-purge")

    async def stop(self, grace: float | None = None) -> None:
        """Stop at once: a purge cut short loses nothing, the next one does it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                purged = await asyncio.to_thread(self._sessions.purge_expired)
            except RepolinkError as exc:  # the store is down: try again next time
                log.warning("could not purge ended sessions: %s", exc.one_line())
            else:
                if purged:
                    log.info("purged %d ended sessions", purged)
            await asyncio.sleep(self._interval)
