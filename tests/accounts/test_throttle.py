"""The sign-in throttle on the database (on SQLite and on PostgreSQL): two processes — two
stores on one database — count the same failures; a failure leaves the count with the window,
and the purge deletes its row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from repolink.accounts.throttle import Throttle
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.accounts import SigninFailure
from support.accountskit import ManualClock

pytestmark = pytest.mark.databases

WINDOW = timedelta(minutes=15)


def test_two_stores_on_one_database_count_the_same_failures(
    settings: Settings, clock: ManualClock
) -> None:
    with Store.open(settings) as first_store, Store.open(settings) as second_store:
        first = Throttle(first_store, "source", 4, WINDOW, clock=clock)
        second = Throttle(second_store, "source", 4, WINDOW, clock=clock)
        for throttle in (first, second, first):
            throttle.failed("198.51.100.7")
        assert first.blocked_until("198.51.100.7") is None
        clock.now += timedelta(minutes=1)
        second.failed("198.51.100.7")
        # Four failures, two in each: both hold the address back until the oldest leaves.
        until = clock.now - timedelta(minutes=1) + WINDOW
        assert first.blocked_until("198.51.100.7") == until
        assert second.blocked_until("198.51.100.7") == until
        # Another key, or the same key under another scope, is not held back.
        assert first.blocked_until("198.51.100.8") is None
        assert (
            Throttle(first_store, "account", 4, WINDOW, clock=clock).blocked_until("198.51.100.7")
            is None
        )
        clock.now = until
        assert second.blocked_until("198.51.100.7") is None


def test_a_clear_and_the_purge_delete_the_rows(settings: Settings, clock: ManualClock) -> None:
    with Store.open(settings) as store:
        throttle = Throttle(store, "account", 3, WINDOW, clock=clock)
        throttle.failed("alice")
        throttle.failed("bob")
        throttle.clear("alice")
        assert count(store) == 1
        clock.now += WINDOW
        assert throttle.purge() == 1
        assert count(store) == 0


def count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(SigninFailure)) or 0)
