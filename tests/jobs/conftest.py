"""``job_store``: the test's real SQLite store, with the test job tables created in it."""

from __future__ import annotations

import pytest

from repolink.store import Store
from support.jobkit import ScratchBase


@pytest.fixture
def job_store(store: Store) -> Store:
    ScratchBase.metadata.create_all(store.engine)
    return store
