"""Building the SQLAlchemy engine for a database URL: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from repolink.errors import StoreError
from repolink.store.plain import configure_sqlite_connection

log = logging.getLogger(__name__)

# anyio's default thread limiter: how many requests' database work may run at once.
SQLITE_POOL_SIZE = 40

_URL_HINT = (
    "set REPOLINK_DATABASE_URL to sqlite:////absolute/path/repolink.db or "
    "postgresql+psycopg://user:password@host/dbname, or unset it to use the data directory"
)


def parse_database_url(url: str) -> URL:
    """The parsed URL, or :class:`StoreError` ``store_url_invalid`` (without echoing it)."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(
            "store_url_invalid", "the database URL cannot be parsed", _URL_HINT
        ) from None


def describe_url(url: URL) -> str:
    """The URL as it may be shown to a person: the password is masked."""
    return url.render_as_string(hide_password=True)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, ``None`` for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def first_error_line(exc: SQLAlchemyError) -> str:
    """The driver's own message, never SQLAlchemy's rendering of the statement."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = str(cause).strip().splitlines()
    return lines[0][:200] if lines else type(cause).__name__


def make_engine(url: URL) -> Engine:
    """An engine for ``url``; SQLite connections get WAL, a busy timeout and foreign keys.

    Parameters are hidden from SQLAlchemy's error messages and logs: rows carry encrypted
    keys and hashed secrets that have no business in a traceback.
    """
    options: dict[str, Any] = {"hide_parameters": True}
    if not is_sqlite(url):
        options["pool_pre_ping"] = True
    elif sqlite_file(url) is not None:
        # As many kept connections as the server's request threads run at once: with
        # SQLAlchemy's default of 5, most requests under load opened (and configured) a
        # connection of their own and closed it after one short read.
        options["pool_size"] = SQLITE_POOL_SIZE
    try:
        engine = create_engine(url, **options)
    except NoSuchModuleError:
        raise StoreError(
            "store_url_invalid",
            f"unknown database kind {url.drivername!r} in the database URL",
            _URL_HINT,
        ) from None
    except ImportError as exc:
        raise StoreError(
            "store_driver_missing",
            f"the database driver for {url.drivername!r} is not installed ({exc.name})",
            "install it into repolink's environment (for PostgreSQL: pip install "
            "'psycopg[binary]' and use a postgresql+psycopg:// URL)",
        ) from None
    except ArgumentError:
        raise StoreError(
            "store_url_invalid", f"the database URL {describe_url(url)} is not usable", _URL_HINT
        ) from None
    if is_sqlite(url):
        event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    configure_sqlite_connection(dbapi_connection)
