"""Failed attempts counted per key (an account, a source address) in a sliding window.

Sign-in by password is the one place a guesser gets an answer per try; after ``limit``
failures within ``window`` a key is refused without checking anything until its oldest failure
leaves the window. The failures are rows of the ``signin_failures`` table, one per failure,
under the throttle's ``scope``: every server process on the database counts the same ones, so
several processes behind one address do not multiply the limit. A row goes once it has left
the window: at the key's next failure, and for every key at :meth:`Throttle.purge` (the
sessions' hourly purge). Two processes checking at the same moment may each let one attempt
through past the limit; never more than one each.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from repolink.store import Store
from repolink.store.models.accounts import MAX_THROTTLE_KEY, SigninFailure
from repolink.store.types import Clock, utcnow


class Throttle:
    def __init__(
        self,
        store: Store,
        scope: str,
        limit: int,
        window: timedelta,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._scope = scope
        self._limit = limit
        self._window = window
        self._clock = clock

    def blocked_until(self, key: str) -> datetime | None:
        """When ``key`` may try again, or ``None`` when it may now."""
        start = self._clock() - self._window
        with self._store.session() as session:
            oldest = list(
                session.scalars(
                    select(SigninFailure.at)
                    .where(
                        SigninFailure.scope == self._scope,
                        SigninFailure.key == _bounded(key),
                        SigninFailure.at > start,
                    )
                    .order_by(SigninFailure.at)
                    .limit(self._limit)
                )
            )
        if len(oldest) < self._limit:
            return None
        return oldest[0] + self._window

    def failed(self, key: str) -> None:
        now = self._clock()
        with self._store.session() as session:
            session.execute(
                delete(SigninFailure).where(
                    SigninFailure.scope == self._scope,
                    SigninFailure.key == _bounded(key),
                    SigninFailure.at <= now - self._window,
                )
            )
            session.add(SigninFailure(scope=self._scope, key=_bounded(key), at=now))

    def clear(self, key: str) -> None:
        with self._store.session() as session:
            session.execute(
                delete(SigninFailure).where(
                    SigninFailure.scope == self._scope, SigninFailure.key == _bounded(key)
                )
            )

    def purge(self) -> int:
        """Delete this scope's failures that have left the window; how many."""
        with self._store.session() as session:
            result = session.execute(
                delete(SigninFailure).where(
                    SigninFailure.scope == self._scope,
                    SigninFailure.at <= self._clock() - self._window,
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)


def _bounded(key: str) -> str:
    return key[:MAX_THROTTLE_KEY]
