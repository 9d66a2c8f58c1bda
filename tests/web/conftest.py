"""The pages' tests share one application per test: the data directory of ``settings``, cheap
argon2, and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from repolink.app import Repolink
from repolink.settings import Settings
from repolink.store import Store
from support.accountskit import FAST_HASHER, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(settings: Settings, store: Store, clock: ManualClock) -> Iterator[Repolink]:
    with Repolink(settings, store=store, password_hasher=FAST_HASHER, clock=clock) as application:
        yield application
