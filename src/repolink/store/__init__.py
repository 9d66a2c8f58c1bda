"""repolink's database: SQLAlchemy 2 models, Alembic migrations, SQLite or PostgreSQL.

``Store.open(settings)`` connects and migrates; tables live in modules of their own
(``repolink.store.models``, ``repolink.store.models.host`` …) on :class:`repolink.store.base.Base`.
``Store`` and ``UTCDateTime`` are imported on first use, so that importing the clock or the plain
reads (:mod:`repolink.store.plain`) loads no SQLAlchemy (issue 10 §2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repolink.store.clock import utcnow

if TYPE_CHECKING:
    from repolink.store.database import Store
    from repolink.store.types import UTCDateTime

__all__ = ["Store", "UTCDateTime", "utcnow"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from repolink.store.database import Store

        return Store
    if name == "UTCDateTime":
        from repolink.store.types import UTCDateTime

        return UTCDateTime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
