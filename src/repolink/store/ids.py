"""The range of the tables' integer ids, the same on every database repolink runs on.

An ``Integer`` primary key is 32-bit on PostgreSQL: a larger number given to a query does not
find nothing there, it fails the query (``integer out of range``). Adapters and parsers refuse
a number past :data:`MAX_ROW_ID` before it reaches a query, as "no such row".
"""

from __future__ import annotations

# PostgreSQL's integer; SQLite's are wider, so this bound holds on both.
MAX_ROW_ID = 2**31 - 1


def is_row_id(value: int) -> bool:
    """Whether ``value`` may be the id of a row (a positive number within :data:`MAX_ROW_ID`)."""
    return 0 < value <= MAX_ROW_ID
