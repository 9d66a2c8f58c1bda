"""Which transactions are open: for tests of the rule that no git, ssh or network call runs
inside one (architecture.md, services)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from repolink.store import Store


def track_sessions(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[Session]:
    """The sessions of ``store`` open at any moment, as a list kept up to date (for the test)."""
    opened = store.session
    open_sessions: list[Session] = []

    @contextlib.contextmanager
    def tracked() -> Iterator[Session]:
        with opened() as session:
            open_sessions.append(session)
            try:
                yield session
            finally:
                open_sessions.remove(session)

    monkeypatch.setattr(store, "session", tracked)
    return open_sessions
