"""The store's clock, without the column types' SQLAlchemy import."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC — the only clock the store is written with."""
    return datetime.now(UTC)


# What a service asks for when it needs the time: :func:`utcnow` unless a test gives another.
Clock = Callable[[], datetime]
