"""repolink's database: SQLAlchemy 2 models, Alembic migrations, SQLite or PostgreSQL.

``Store.open(settings)`` connects and migrates; tables live in modules of their own
(``repolink.store.models``, ``repolink.store.models.host`` …) on :class:`repolink.store.base.Base`.
"""

from __future__ import annotations

from repolink.store.database import Store
from repolink.store.types import UTCDateTime, utcnow

__all__ = ["Store", "UTCDateTime", "utcnow"]
