"""The open database: an engine, migrated to the newest revision, and its sessions.

SQLAlchemy is imported when a session, a Core connection or the engine is first asked for:
a command on the embedded SQLite file whose schema is current reads through
:meth:`Store.plain` on stdlib :mod:`sqlite3` and never imports it (issue 10 §2).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from repolink.errors import StoreError
from repolink.settings import Settings
from repolink.store.heads import declared_heads
from repolink.store.plain import (
    CoreReader,
    PlainReader,
    connect_sqlite,
    sqlite_reading,
    stored_revisions,
)

if TYPE_CHECKING:
    from sqlalchemy import URL, Connection, Engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session, sessionmaker
    from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

# The embedded database's URL prefix: the rest is the file's path, read without SQLAlchemy.
_SQLITE_PREFIX = "sqlite:///"
# Where a pooled SQLite connection keeps the count of rows it had changed when checked out.
_CHANGES_SEEN = "repolink_changes_seen"


class Store:
    """repolink's database. Build it with :meth:`open`; close it with :meth:`close`.

    ``with store.session() as session:`` is one transaction: committed when the block ends,
    rolled back when it raises. Objects stay usable after the commit (no expiry), so a service
    can return what it wrote.
    """

    def __init__(
        self, engine: Engine | None, url: URL | str, *, embedded: Path | None = None
    ) -> None:
        """``engine`` None: made from ``url`` when first needed (see :meth:`open`)."""
        self._url_text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        self._engine = engine
        # The SQLite file read through stdlib sqlite3 by plain(); None: SQLAlchemy reads.
        self._embedded = embedded
        self._sessions: sessionmaker[Session] | None = None
        self._lock = threading.Lock()
        # SQLite lets one writer in at a time, and one it turns away sleeps in its busy handler
        # (1, 2, 5, 10 … ms) however soon the file is free again: this process's writers on
        # the hot path take turns here instead. Re-entrant: a writer may call another.
        self._write_turn = threading.RLock()

    @classmethod
    def open(cls, settings: Settings, *, native_sqlite: bool = True) -> Store:
        """Connect to the configured database and migrate it to the newest revision.

        On the embedded SQLite file already at the newest revision, nothing more is done
        until a query asks: no engine, no SQLAlchemy import. ``native_sqlite=False`` reads
        that file through SQLAlchemy too (what a test comparing both paths asks for).
        """
        data_dir = settings.resolved_data_dir
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                "store_data_dir_unusable",
                f"cannot create the data directory {data_dir} ({exc.strerror})",
                "set REPOLINK_DATA_DIR to a directory the user running repolink may write",
            ) from None
        url_text = settings.resolved_database_url
        embedded = _embedded_file(url_text)
        if embedded is not None:
            _keep_private(embedded)
            heads = declared_heads()
            if native_sqlite and heads is not None and stored_revisions(embedded) == heads:
                log.debug("opened database %s", url_text)
                return cls(None, url_text, embedded=embedded)
        return cls._open_migrated(url_text, embedded if native_sqlite else None)

    @classmethod
    def _open_migrated(cls, url_text: str, embedded: Path | None) -> Store:
        from sqlalchemy.exc import SQLAlchemyError

        from repolink.store import migrate
        from repolink.store.engine import (
            describe_url,
            is_sqlite,
            make_engine,
            parse_database_url,
            sqlite_file,
        )

        url = parse_database_url(url_text)
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
        return cls(engine, url, embedded=embedded)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made on first use."""
        engine = self._engine
        if engine is None:
            from repolink.store.engine import make_engine, parse_database_url

            with self._lock:
                if self._engine is None:
                    self._engine = make_engine(parse_database_url(self._url_text))
                engine = self._engine
        return engine

    def _session_factory(self) -> sessionmaker[Session]:
        sessions = self._sessions
        if sessions is None:
            from sqlalchemy.orm import sessionmaker

            sessions = self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        return sessions

    def after_writes(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the writing thread) each time a connection of this process
        that wrote to the embedded SQLite database goes back to the pool, its transaction
        over: the change feed's wake-up (:mod:`repolink.platform.changes`). Nothing on other
        databases, whose triggers announce every change themselves. From now on every
        statement of this process goes through the engine (:meth:`plain` included)."""
        engine = self.engine
        if engine.dialect.name != "sqlite":
            return
        from sqlalchemy import event

        # sqlite3 counts the rows each connection changed: moved while checked out, it wrote.
        def checked_out(dbapi_connection: object, record: ConnectionPoolEntry, _: object) -> None:
            record.info[_CHANGES_SEEN] = getattr(dbapi_connection, "total_changes", None)

        def checked_in(dbapi_connection: object, record: ConnectionPoolEntry) -> None:
            changed = getattr(dbapi_connection, "total_changes", None)
            if changed is not None and record.info.pop(_CHANGES_SEEN, None) != changed:
                callback()

        event.listen(engine, "checkout", checked_out)
        event.listen(engine, "checkin", checked_in)

    @property
    def url(self) -> str:
        """The database URL with its password masked, fit for messages."""
        if self._embedded is not None or self._url_text.startswith(_SQLITE_PREFIX):
            return self._url_text  # a file's path: no password to mask
        from repolink.store.engine import describe_url, parse_database_url

        return describe_url(parse_database_url(self._url_text))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on error."""
        from sqlalchemy.exc import OperationalError

        from repolink.store.engine import first_error_line

        try:
            with self._session_factory().begin() as session:
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
        from sqlalchemy.exc import OperationalError

        from repolink.store.engine import first_error_line

        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise StoreError(
                "store_unavailable",
                f"the database {self.url} failed: {first_error_line(exc)}",
                "retry; if it persists, check that the database is reachable and not full",
            ) from exc

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One short write on a plain connection: committed when the block ends, rolled back
        when it raises, reported as :meth:`session` reports failures.

        For the hot write paths (a webhook delivery: a hundred may arrive in one second). Its
        first statement should write, so that on SQLite it holds the write lock from the
        start rather than upgrading a read snapshot another writer may have outdated. On
        SQLite the writers of this process that come through here take turns.
        """
        sqlite = self.engine.dialect.name == "sqlite"
        with self._write_turn if sqlite else contextlib.nullcontext(), self.reading() as db:
            yield db

    @contextmanager
    def plain(self, *, write: bool = False) -> Iterator[PlainReader]:
        """One short transaction of fixed SQL texts (:mod:`repolink.store.plain`): on the
        embedded SQLite file through stdlib sqlite3, without importing SQLAlchemy, until the
        engine is open; elsewhere on a Core connection. ``write``: committed when the block
        ends (rolled back when it raises). Failures are reported as :meth:`session` reports them."""
        if self._embedded is None or self._engine is not None:
            # Another database, or a process whose engine is open (a server): its pool's
            # connections are ready, where a new sqlite3 one would set its pragmas per read.
            with self.writing() if write else self.reading() as core:  # committed at the end
                yield CoreReader(core)
            return
        try:
            connection = connect_sqlite(self._embedded)
        except sqlite3.Error as exc:
            raise StoreError(
                "store_unavailable",
                f"the database {self.url} failed: {str(exc).strip()[:200]}",
                "retry; if it persists, check that the database is reachable and not full",
            ) from exc
        try:
            with sqlite_reading(connection, self.url, write=write) as reader:
                yield reader
        finally:
            connection.close()

    def current_revision(self) -> str | None:
        """The migration revision the database is at."""
        from repolink.store import migrate

        return migrate.current_revision(self.engine)

    def check_ready(self) -> None:
        """Raise :class:`StoreError` unless the database answers and its schema is at the
        newest revision: whether a server may take requests (``/readyz``)."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        from repolink.store import migrate
        from repolink.store.engine import first_error_line

        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            # The driver's words go to the log only: the probe answers anyone who asks.
            log.warning("database %s unavailable: %s", self.url, first_error_line(exc))
            raise StoreError(
                "store_unavailable",
                "the database does not answer",
                "check that the database is reachable; the server's log says why",
            ) from None
        if not migrate.is_current(self.engine):
            raise StoreError(
                "store_schema_outdated",
                "the database schema is not at the revision this server needs",
                "restart the server so that it migrates the database, or upgrade repolink",
            )

    def close(self) -> None:
        with self._lock:
            engine, self._engine, self._sessions = self._engine, None, None
        if engine is not None:
            engine.dispose()

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


def _embedded_file(url_text: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (the default one is), read without
    SQLAlchemy; ``None`` for anything else (in-memory, options, another database), which
    SQLAlchemy parses."""
    if not url_text.startswith(_SQLITE_PREFIX):
        return None
    path = url_text[len(_SQLITE_PREFIX) :]
    if not path or path == ":memory:" or path.startswith("file:") or any(c in path for c in "?%#"):
        return None
    return Path(path).expanduser().resolve()


def _migration_lock(url: URL) -> Path | None:
    from repolink.store.engine import is_sqlite, sqlite_file

    if not is_sqlite(url):
        return None
    database = sqlite_file(url)
    if database is None:
        return None
    return database.with_name(database.name + ".migrate-lock")


def _open_failed(url: URL, exc: SQLAlchemyError) -> StoreError:
    from repolink.store.engine import describe_url, first_error_line, is_sqlite, sqlite_file

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
