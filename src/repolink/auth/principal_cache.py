"""Who a token was found to be, kept for a moment: the API authenticates every request, and
the same few tokens make nearly all of them.

An entry is answered for :data:`FRESH_FOR` seconds after the database said who the token is,
and never past the token's expiry; after that the token is looked up again (which also writes
its last use, once a minute). A change made in this process — a token revoked, a user deleted
— calls :meth:`PrincipalCache.invalidate` once it is committed, and the very next request looks
the token up again. A lookup that began before an invalidation is not kept: its answer may
predate the change. Another process's change (the CLI, a second server on the same database)
is seen within :data:`FRESH_FOR`.

Kept by the SHA-256 of the token, as the database keeps it: the cache holds no token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from repolink.auth.principal import Principal

FRESH_FOR = 1.0
# Tokens are few; a bound keeps a stream of distinct valid tokens from growing it without end.
MAX_ENTRIES = 1024


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: datetime | None
    fresh_until: float


class PrincipalCache:
    """Token hash → principal, shared by the services that authenticate and those that revoke;
    safe across the request threads."""

    def __init__(
        self, *, fresh_for: float = FRESH_FOR, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._fresh_for = fresh_for
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        self._epoch = 0
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int:
        """Read before a lookup, handed to :meth:`put` after it."""
        return self._epoch

    def get(self, token_hash: str, now: datetime) -> Principal | None:
        """The principal of a fresh, unexpired entry, else ``None``."""
        entry = self._entries.get(token_hash)
        if entry is None or entry.fresh_until <= self._monotonic():
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            return None
        return entry.principal

    def put(
        self, token_hash: str, principal: Principal, expires_at: datetime | None, epoch: int
    ) -> None:
        """Keep what a lookup that began at ``epoch`` found, unless an invalidation came since."""
        entry = _Entry(principal, expires_at, self._monotonic() + self._fresh_for)
        with self._lock:
            if epoch != self._epoch:
                return
            if len(self._entries) >= MAX_ENTRIES and token_hash not in self._entries:
                self._entries.clear()
            self._entries[token_hash] = entry

    def invalidate(self) -> None:
        """Forget every entry, and every lookup still running: call after committing a change
        of who a token is (revoked, its user deleted)."""
        with self._lock:
            self._epoch += 1
            self._entries.clear()
