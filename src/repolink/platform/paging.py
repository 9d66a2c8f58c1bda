"""The commit list's page sizes, in a module of their own: the CLI shows the default in its
help without importing the commit service (and SQLAlchemy) at start-up."""

from __future__ import annotations

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
