"""Failed attempts counted per key (an account, a source address) in a sliding window.

Sign-in by password is the one place a guesser gets an answer per try; after ``limit``
failures within ``window`` a key is refused without checking anything until its oldest failure
leaves the window. The counts live in the process: several server processes each count their
own, which multiplies the limit by their number but never lets a key through unlimited.
Memory is bounded: at most ``max_keys`` keys are tracked, the stalest forgotten first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from repolink.store.types import Clock, utcnow

DEFAULT_MAX_KEYS = 10_000


class Throttle:
    def __init__(
        self,
        limit: int,
        window: timedelta,
        *,
        clock: Clock = utcnow,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked_until(self, key: str) -> datetime | None:
        """When ``key`` may try again, or ``None`` when it may now."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                return None
            _forget_older(failures, now - self._window)
            if len(failures) < self._limit:
                return None
            return failures[0] + self._window

    def failed(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            failures = self._failures.setdefault(key, deque())
            _forget_older(failures, now - self._window)
            failures.append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def _forget_older(failures: deque[datetime], start: datetime) -> None:
    while failures and failures[0] <= start:
        failures.popleft()
