"""Every table repolink has, in one registry.

Importing any model module imports this package first, and this package imports every model
module, so ``Base.metadata`` is complete whichever model a caller needed.
"""

from __future__ import annotations

from repolink.store.models import (  # noqa: F401  (the imports register the tables)
    accounts,
    fetch_runs,
    hooks,
    host,
    keys,
    known_hosts,
    platform,
    platform_keys,
    prepared_keys,
    rotation,
    user_keys,
    webhooks_in,
)
from repolink.store.models.keys import KeyRecord, new_record_id

__all__ = ["KeyRecord", "new_record_id"]
