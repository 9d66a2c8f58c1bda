"""Running the Alembic migrations in ``store/migrations`` from code, on a live engine.

No ``alembic.ini`` is read: the configuration is built here, and the connection is handed to
``env.py`` through ``Config.attributes``, so file and in-memory SQLite and PostgreSQL all take
the same path. An upgrade is one transaction on every backend, SQLite included, and concurrent
upgrades from several processes are serialised (a file lock beside a SQLite database, an
advisory lock on PostgreSQL), so every command can migrate on start without coordination.

Every command opens the store, including the ones sshd runs on each connection in OpenSSH
mode, and importing Alembic costs more than the rest of such a command. So :func:`upgrade`
first compares the stored ``alembic_version`` with the heads declared in the revision files,
with plain SQL and without Alembic; only a database that is not exactly at those heads (new,
older, newer, or anything unexpected) goes through Alembic.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from repolink.errors import StoreError
from repolink.store.engine import first_error_line
from repolink.store.heads import MIGRATIONS_DIR, declared_heads

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

# Any fixed 64-bit number works; it only has to be the same for every repolink process.
_PG_ADVISORY_LOCK_ID = 0x7265706F6C696E6B  # "repolink"


def is_ours(name: str | None, type_: str, parent_names: object) -> bool:
    """Whether Alembic's comparisons of the schema with the models look at a database object:
    procrastinate's tables (migration 0024, PostgreSQL) are procrastinate's, not a model's."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def alembic_config(script_location: Path = MIGRATIONS_DIR) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def head_revision(script_location: Path = MIGRATIONS_DIR) -> str | None:
    """The newest revision this version of repolink knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(script_location)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, ``None`` before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_declared_heads(engine: Engine, script_location: Path = MIGRATIONS_DIR) -> bool:
    """Whether the database is exactly at :func:`declared_heads`, checked with plain SQL.

    ``False`` whenever that cannot be told for sure (no ``alembic_version`` table yet, an
    unreadable revision file …): the caller then asks Alembic.
    """
    heads = declared_heads(script_location)
    if heads is None:
        return False
    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(str(row[0]) for row in stored) == heads
    except SQLAlchemyError:
        return False


def is_current(engine: Engine, script_location: Path = MIGRATIONS_DIR) -> bool:
    """Whether the database is at the newest revision this repolink knows (readiness)."""
    if declared_heads(script_location) is not None:
        return is_at_declared_heads(engine, script_location)
    # Revision files that only Alembic can read: ask it (slow, but only on this odd path).
    try:
        return current_revision(engine) == head_revision(script_location)
    except SQLAlchemyError:
        return False


def upgrade(
    engine: Engine,
    *,
    lock_path: Path | None,
    script_location: Path = MIGRATIONS_DIR,
    revision: str = "head",
) -> None:
    """Bring the database to the newest revision (or to ``revision``: an id, ``+1`` …), if it
    is not there already.

    ``lock_path`` names the file lock for SQLite databases (``None`` for in-memory ones).
    """
    # Without the lock: an upgrade is one transaction, so a reader sees the old revision
    # (and takes the slow path below, which waits for the lock) or the new one.
    if revision == "head" and is_at_declared_heads(engine, script_location):
        return
    _migrate(engine, lock_path, script_location, "upgrade", revision)


def downgrade(
    engine: Engine, revision: str, *, lock_path: Path | None, script_location: Path = MIGRATIONS_DIR
) -> None:
    """Take the database back to ``revision`` (an id, ``-1``, ``base``), as one transaction."""
    _migrate(engine, lock_path, script_location, "downgrade", revision)


def _migrate(
    engine: Engine, lock_path: Path | None, script_location: Path, direction: str, revision: str
) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = alembic_config(script_location)
    script = ScriptDirectory.from_config(config)
    lock = _file_lock(lock_path) if lock_path is not None else nullcontext()
    with lock, engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        connection.commit()
        _refuse_unknown(script, current)
        if revision == "head" and set(current) == set(script.get_heads()):
            return
        config.attributes["connection"] = connection
        target = _describe(script.get_heads()) if revision == "head" else revision
        try:
            if connection.dialect.name == "sqlite":
                _upgrade_sqlite(connection, config, direction, revision)
            else:
                _upgrade_transactional(connection, config, direction, revision)
        except SQLAlchemyError as exc:
            raise StoreError(
                "store_migration_failed",
                f"migrating the database from {_describe(current)} to {target} failed: "
                f"{first_error_line(exc)}",
                "nothing was changed (a migration is one transaction); if retrying does not "
                "help, report this as a bug in repolink with this message",
            ) from exc
        after = MigrationContext.configure(connection).get_current_heads()
        connection.commit()
    log.info("migrated database from %s to %s", _describe(current), _describe(after))


def _describe(revisions: Sequence[str]) -> str:
    return ", ".join(revisions) or "empty"


def _refuse_unknown(script: ScriptDirectory, current: Sequence[str]) -> None:
    from alembic.util import CommandError

    for revision in current:
        try:
            known = script.get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            raise StoreError(
                "store_schema_newer",
                f"the database is at revision {revision!r}, which this repolink does not know",
                "it was migrated by a newer repolink: upgrade repolink, or point "
                "REPOLINK_DATA_DIR / REPOLINK_DATABASE_URL at another database",
            )


def _upgrade_sqlite(connection: Connection, config: Config, direction: str, revision: str) -> None:
    """SQLite's documented schema-change procedure, as one transaction.

    The sqlite3 driver neither begins a transaction before DDL nor lets foreign keys be
    switched inside one, so: foreign keys off, our own ``BEGIN IMMEDIATE`` (taking the write
    lock now rather than failing on upgrade later), migrate, check foreign keys, commit.
    """
    connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
    connection.commit()
    raw = connection.connection.driver_connection
    previous_isolation = raw.isolation_level  # type: ignore[union-attr]
    raw.isolation_level = None  # type: ignore[union-attr]
    try:
        with connection.begin():
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            _run_alembic(config, direction, revision)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                tables = sorted({str(row[0]) for row in broken})
                raise StoreError(
                    "store_migration_failed",
                    f"a migration left rows with broken foreign keys in {', '.join(tables)}",
                    "nothing was changed; report this as a bug in repolink",
                )
    finally:
        raw.isolation_level = previous_isolation  # type: ignore[union-attr]
        connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        connection.commit()


def _upgrade_transactional(
    connection: Connection, config: Config, direction: str, revision: str
) -> None:
    with connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": _PG_ADVISORY_LOCK_ID}
            )
        _run_alembic(config, direction, revision)


def _run_alembic(config: Config, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.util import CommandError

    try:
        if direction == "downgrade":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)
    except CommandError as exc:
        # Raised for problems of the migration scripts themselves (several heads, a missing
        # down revision): a packaging bug, not something the operator can fix.
        raise StoreError(
            "store_migration_failed",
            f"the database migrations cannot run ({exc})",
            "nothing was changed; report this as a bug in repolink",
        ) from exc


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(
            "store_lock_failed",
            f"cannot create the migration lock file {path} ({exc.strerror})",
            "make the database's directory writable by the user running repolink",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
