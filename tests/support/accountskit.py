"""Accounts for tests: an application whose argon2 is cheap, and users with tokens.

The production parameters (64 MiB, three passes) cost half a second a hash on a CI machine;
:data:`FAST_HASHER` is the same argon2id with the smallest parameters, so a test that makes
users stays fast. Build applications with ``Repolink(settings, password_hasher=FAST_HASHER)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Principal
from repolink.settings import Settings
from repolink.store import Store

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"


class ManualClock:
    """A clock that stands still until the test moves it (``clock.now += timedelta(…)``)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    """A :class:`ManualClock` (import into a directory's conftest to share)."""
    return ManualClock()


@pytest.fixture
def app(settings: Settings, store: Store, clock: ManualClock) -> Iterator[Repolink]:
    """An application on ``settings``' store with cheap argon2 and ``clock`` (import into a
    directory's conftest to share)."""
    with Repolink(settings, store=store, password_hasher=FAST_HASHER, clock=clock) as application:
        yield application


@dataclass(frozen=True)
class Account:
    principal: Principal
    token: str


def make_account(application: Repolink, username: str, *, site_admin: bool = False) -> Account:
    """A user with a password and one API token."""
    user = application.users.create(LOCAL_ADMIN, username, password=PASSWORD, site_admin=site_admin)
    _, token = application.api_tokens.create(LOCAL_ADMIN, username, "tests")
    return Account(Principal(user.id, user.username, user.site_admin), token)


def principal_of(application: Repolink, username: str) -> Principal:
    """The principal the user ``username`` signs in as."""
    user = application.users.get(username)
    return Principal(user.id, user.username, user.site_admin)
