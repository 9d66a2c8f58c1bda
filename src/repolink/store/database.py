"""The open database: an engine, migrated to the newest revision, and its sessions."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy import URL, Connection, Engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from repolink.errors import StoreError
from repolink.settings import Settings
from repolink.store import migrate
from repolink.store.engine import (
    describe_url,
    first_error_line,
    is_sqlite,
    make_engine,
    parse_database_url,
    sqlite_file,
)

log = logging.getLogger(__name__)


class Store:
    """repolink's database. Build it with :meth:`open`; close it with :meth:`close`.

    ``with store.session() as session:`` is one transaction: committed when the block ends,
    rolled back when it raises. Objects stay usable after the commit (no expiry), so a service
    can return what it wrote.
    """

    def __init__(self, engine: Engine, url: URL) -> None:
        self._engine = engine
        self._url = url
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """Connect to the configured database and migrate it to the newest revision."""
        data_dir = settings.resolved_data_dir
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                "store_data_dir_unusable",
                f"cannot create the data directory {data_dir} ({exc.strerror})",
                "set REPOLINK_DATA_DIR to a directory the user running repolink may write",
            ) from None
        url = parse_database_url(settings.resolved_database_url)
        if is_sqlite(url) and (database := sqlite_file(url)) is not None:
            _keep_private(database)
        engine = make_engine(url)
        try:
            migrate.upgrade(engine, lock_path=_migration_lock(url))
        except StoreError:
            engine.dispose()
            raise
        except SQLAlchemyError as exc:
            engine.dispose()
            raise _open_failed(url, exc) from exc
        log.debug("opened database %s", describe_url(url))
        return cls(engine, url)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with its password masked, fit for messages."""
        return describe_url(self._url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on error."""
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            raise StoreError(
                "store_unavailable",
                f"the database {self.url} failed: {first_error_line(exc)}",
                "retry; if it persists, check that the database is reachable and not full",
            ) from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One short read on a plain connection, without the ORM's unit of work.

        For the hot read paths (the access check and the commit page every API client asks
        for): on them the ORM's per-statement bookkeeping costs more than the query itself.
        Failures are reported as :meth:`session` reports them.
        """
        try:
            with self._engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise StoreError(
                "store_unavailable",
                f"the database {self.url} failed: {first_error_line(exc)}",
                "retry; if it persists, check that the database is reachable and not full",
            ) from exc

    def current_revision(self) -> str | None:
        """The migration revision the database is at."""
        return migrate.current_revision(self._engine)

    def check_ready(self) -> None:
        """Raise :class:`StoreError` unless the database answers and its schema is at the
        newest revision: whether a server may take requests (``/readyz``)."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            # The driver's words go to the log only: the probe answers anyone who asks.
            log.warning("database %s unavailable: %s", self.url, first_error_line(exc))
            raise StoreError(
                "store_unavailable",
                "the database does not answer",
                "check that the database is reachable; the server's log says why",
            ) from None
        if not migrate.is_current(self._engine):
            raise StoreError(
                "store_schema_outdated",
                "the database schema is not at the revision this server needs",
                "restart the server so that it migrates the database, or upgrade repolink",
            )

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


def _keep_private(database: Path) -> None:
    """Make the SQLite file, and its WAL and shared-memory files, readable by this user only.

    They hold key fingerprints, token hashes and the encrypted keys: nothing another local
    user should read, whatever the umask. SQLite creates ``-wal`` and ``-shm`` with the mode
    of the database file, so creating that file 0600 first is enough for a new store; the mode
    of an older store's files is narrowed. A file this user does not own keeps its mode: the
    open that follows reports any real problem.
    """
    with contextlib.suppress(OSError):  # there already, or the open below says what is wrong
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, *(database.with_name(database.name + s) for s in _SIDE_FILES)):
        with contextlib.suppress(OSError):
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)


_SIDE_FILES = ("-wal", "-shm", "-journal")


def _migration_lock(url: URL) -> Path | None:
    if not is_sqlite(url):
        return None
    database = sqlite_file(url)
    if database is None:
        return None
    return database.with_name(database.name + ".migrate-lock")


def _open_failed(url: URL, exc: SQLAlchemyError) -> StoreError:
    where = describe_url(url)
    database = sqlite_file(url) if is_sqlite(url) else None
    if database is not None:
        hint = (
            f"check that {database} is a repolink database file that the user running "
            "repolink may read and write, in a writable directory"
        )
    else:
        hint = "check REPOLINK_DATABASE_URL, that the server is running, and the credentials"
    return StoreError(
        "store_open_failed", f"cannot open the database {where}: {first_error_line(exc)}", hint
    )
