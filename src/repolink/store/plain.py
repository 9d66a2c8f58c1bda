"""Plain reads: fixed SQL texts on a DB-API connection, without SQLAlchemy's ORM.

A CLI read command (``repolink project list``) spends a few milliseconds on its query and
would spend ~0.3 s importing SQLAlchemy (issue 10 §2). So :meth:`repolink.store.Store.plain`
hands the services one :class:`PlainReader` for one short transaction: on the embedded SQLite
file a stdlib :mod:`sqlite3` connection (this module imports nothing heavier), on any other
database a SQLAlchemy Core connection (:class:`CoreReader`) running the very same texts. A
service writes its query once, in SQL that both SQLite and PostgreSQL read, with ``:name``
parameters, and reads the rows as mappings of column names — one place, whichever connection
it gets.

Values come back as the driver gives them: a timestamp is text on SQLite and a ``datetime``
on PostgreSQL, a boolean 0/1 or ``bool``; :func:`utc_datetime` and ``bool()`` make them one.
An aware ``datetime`` parameter is written as the ``UTCDateTime`` column type writes it, so
that SQLite's text comparisons order it among the values SQLAlchemy wrote.

``Store.plain(write=True)`` is one write transaction on the same reader (:meth:`execute`): how
a service's small bookkeeping statement (a fetch's outcome on its connection) is written once
for both an ORM transaction (:class:`CoreReader` on its session's connection) and a command
that never imports the ORM.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from repolink.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Connection, TextClause

SQLITE_CACHE_KIB = 16 * 1024
SQLITE_BUSY_TIMEOUT_MS = 5000

Row = Mapping[str, Any]


class PlainReader(Protocol):
    """One read transaction taking fixed SQL texts with ``:name`` parameters."""

    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> Sequence[Row]:
        """Every row of the statement, each a mapping from column name to value."""
        ...

    def scalar(self, sql: str, params: Mapping[str, object] | None = None) -> Any:
        """The first column of the first row, ``None`` without a row."""
        ...

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> int:
        """Run a writing statement; how many rows it changed."""
        ...


def configure_sqlite_connection(dbapi_connection: Any) -> None:
    """The per-connection settings of every SQLite connection repolink opens, through
    SQLAlchemy or not; journal_mode persists in the file once set. busy_timeout first, so
    that switching to WAL waits for another process instead of failing."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # 16 MiB rather than 2: the commit index's (connection, sha) key of a large history
        # is written in random order, and a smaller cache rereads its pages on every insert.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


class SQLiteReader:
    """:class:`PlainReader` on a stdlib :mod:`sqlite3` connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> list[Row]:
        cursor = self._connection.execute(sql, sqlite_params(params))
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def scalar(self, sql: str, params: Mapping[str, object] | None = None) -> Any:
        row = self._connection.execute(sql, sqlite_params(params)).fetchone()
        return None if row is None else row[0]

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> int:
        return self._connection.execute(sql, sqlite_params(params)).rowcount


class CoreReader:
    """:class:`PlainReader` on a SQLAlchemy Core connection (any database but embedded
    SQLite, or a store whose engine is open already)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._text = _text_clause
        self._sqlite = connection.dialect.name == "sqlite"

    def _params(self, params: Mapping[str, object] | None) -> dict[str, object]:
        return sqlite_params(params) if self._sqlite else dict(params or {})

    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> list[Row]:
        result = self._connection.execute(self._text(sql), self._params(params))
        return [dict(row._mapping) for row in result]

    def scalar(self, sql: str, params: Mapping[str, object] | None = None) -> Any:
        return self._connection.execute(self._text(sql), self._params(params)).scalar()

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> int:
        result = self._connection.execute(self._text(sql), self._params(params))
        count = getattr(result, "rowcount", -1)
        return count if isinstance(count, int) else -1


@functools.lru_cache(maxsize=512)
def _text_clause(sql: str) -> TextClause:
    """One ``text()`` per SQL text: a hot read (the commit page) does not parse it anew."""
    from sqlalchemy import text

    return text(sql)


def connect_sqlite(database: Path) -> sqlite3.Connection:
    """A connection to the SQLite file ``database`` with repolink's settings, in autocommit
    mode: :func:`sqlite_reading` begins and ends its transaction itself."""
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        configure_sqlite_connection(connection)
    except sqlite3.Error:
        connection.close()
        raise
    return connection


@contextmanager
def sqlite_reading(
    connection: sqlite3.Connection, where: str, *, write: bool = False
) -> Iterator[SQLiteReader]:
    """One transaction on ``connection``: every statement sees the same snapshot; with
    ``write``, it takes the write lock at once and is committed unless the block raises.
    ``where`` names the database in an error."""
    try:
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield SQLiteReader(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT" if write else "ROLLBACK")  # a read: nothing to keep
    except sqlite3.OperationalError as exc:
        raise StoreError(
            "store_unavailable",
            f"the database {where} failed: {_first_line(exc)}",
            "retry; if it persists, check that the database is reachable and not full",
        ) from exc


def stored_revisions(database: Path) -> frozenset[str] | None:
    """The revisions in the SQLite file's ``alembic_version``; ``None`` when the file is
    missing, not a database, or has no such table (then the migrations decide)."""
    if not database.is_file():
        return None
    try:
        connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return frozenset(str(row[0]) for row in rows)


def sqlite_params(params: Mapping[str, object] | None) -> dict[str, object]:
    """``params`` for SQLite: an aware datetime as the text ``UTCDateTime`` stores (UTC,
    no offset, microseconds), which SQLite compares as text."""
    return {
        name: value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, datetime) and value.tzinfo is not None
        else value
        for name, value in (params or {}).items()
    }


def utc_datetime(value: datetime | str) -> datetime:
    """A stored timestamp as an aware UTC datetime: what the ``UTCDateTime`` column type
    returns through SQLAlchemy, from the text SQLite holds or PostgreSQL's ``datetime``."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
