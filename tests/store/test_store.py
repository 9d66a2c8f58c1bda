"""repolink.store: engine settings, automatic migrations, sessions, error mapping."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, inspect, select, text

from repolink.errors import StoreError
from repolink.settings import Settings
from repolink.store import Store, UTCDateTime, index_triggers, migrate
from repolink.store.base import Base
from repolink.store.engine import SQLITE_POOL_SIZE
from repolink.store.models import KeyRecord, new_record_id

pytestmark = pytest.mark.databases

MY_TABLES = {"key_records"}


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **overrides)


def key_record(**overrides: Any) -> KeyRecord:
    values: dict[str, Any] = {
        "id": new_record_id(),
        "label": "deploy key",
        "comment": "ci@example",
        "key_type": "ssh-ed25519",
        "bits": 256,
        "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample",
        "fingerprint_sha256": "SHA256:abc",
        "fingerprint_md5": "MD5:00:11",
        "created_at": datetime.now(UTC),
    }
    values.update(overrides)
    return KeyRecord(**values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(settings_for(tmp_path))
    yield opened
    opened.close()


# --- opening and SQLite settings ------------------------------------------------------------


@pytest.mark.sqlite_only("the embedded SQLite file")
def test_open_creates_private_data_dir_and_migrates_to_head(tmp_path: Path) -> None:
    with Store.open(settings_for(tmp_path)) as store:
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        assert (tmp_path / "data" / "repolink.db").is_file()
        assert store.current_revision() == migrate.head_revision()
        assert "key_records" in inspect(store.engine).get_table_names()


def _modes(directory: Path) -> dict[str, int]:
    return {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in directory.iterdir()
        if path.name.startswith("repolink.db") and not path.name.endswith("migrate-lock")
    }


@pytest.mark.sqlite_only("the embedded SQLite file")
def test_the_database_and_its_wal_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    # The files hold key fingerprints, token hashes and encrypted keys; a umask of 022 made
    # them readable by every local user.
    old_umask = os.umask(0o022)
    try:
        with Store.open(settings_for(tmp_path)) as store, store.session() as session:
            session.add(key_record())
            session.flush()
            modes = _modes(tmp_path / "data")
            assert {"repolink.db", "repolink.db-wal", "repolink.db-shm"} <= modes.keys()
            assert set(modes.values()) == {0o600}, modes
    finally:
        os.umask(old_umask)


@pytest.mark.sqlite_only("the embedded SQLite file")
def test_an_older_store_readable_by_others_is_made_private(tmp_path: Path) -> None:
    Store.open(settings_for(tmp_path)).close()
    for path in (tmp_path / "data").iterdir():
        path.chmod(0o644)
    with Store.open(settings_for(tmp_path)) as store, store.session() as session:
        session.add(key_record())
    assert set(_modes(tmp_path / "data").values()) == {0o600}


@pytest.mark.sqlite_only("the embedded SQLite file")
def test_every_sqlite_connection_gets_wal_busy_timeout_foreign_keys_and_cache(
    store: Store,
) -> None:
    # Two connections at once: the second is new, so it shows the per-connection setup too.
    with store.engine.connect() as first, store.engine.connect() as second:
        for connection in (first, second):
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == 5000
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert pragma("PRAGMA cache_size").scalar() == -16 * 1024  # KiB


@pytest.mark.sqlite_only("the embedded SQLite file")
def test_a_sqlite_file_keeps_as_many_connections_as_requests_run_at_once(store: Store) -> None:
    # Fewer, and most requests under load open, configure and close a connection of their own.
    assert store.engine.pool.size() == SQLITE_POOL_SIZE  # type: ignore[attr-defined]


def test_every_change_of_the_commit_index_has_its_trigger_at_head(store: Store) -> None:
    # The page cache relies on them (migration 0019); a table recreated by a later
    # migration loses its triggers without a word.
    with store.engine.connect() as connection:
        assert index_triggers.installed(connection) == index_triggers.trigger_names()


@pytest.mark.sqlite_only("the embedded SQLite file")
def test_wal_mode_is_stored_in_the_database_file(store: Store, tmp_path: Path) -> None:
    store.close()
    # A plain connection without our listener sees the persistent journal mode.
    plain = create_engine(f"sqlite:///{tmp_path / 'data' / 'repolink.db'}")
    with plain.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    plain.dispose()


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with Store.open(settings) as store, store.session() as session:
        session.add(key_record(id="a" * 32))
    with Store.open(settings) as store, store.session() as session:
        assert store.current_revision() == migrate.head_revision()
        assert session.get(KeyRecord, "a" * 32) is not None


_OPEN = """
import sys, time
from pathlib import Path
from repolink.settings import Settings
from repolink.store import Store
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
with Store.open(Settings(data_dir=Path(sys.argv[2]))) as store:
    print(store.current_revision())
"""


def test_processes_opening_a_new_database_together(tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("REPOLINK_DATABASE_URL", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN, str(go), str(tmp_path / "data")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(4)
    ]
    time.sleep(0.5)  # let every interpreter start and wait at the barrier
    go.touch()
    head = migrate.head_revision()
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == head


def test_in_memory_sqlite(tmp_path: Path) -> None:
    with Store.open(settings_for(tmp_path, database_url="sqlite://")) as store:
        with store.session() as session:
            session.add(key_record(id="b" * 32))
        with store.session() as session:
            assert session.get(KeyRecord, "b" * 32) is not None
        assert store.current_revision() == migrate.head_revision()


def test_an_empty_postgresql_database_is_migrated_to_the_head(
    tmp_path: Path, postgres_empty_url: str
) -> None:
    with Store.open(settings_for(tmp_path, database_url=postgres_empty_url)) as store:
        assert store.engine.dialect.name == "postgresql"
        assert store.current_revision() == migrate.head_revision()
        with store.session() as session:
            session.add(key_record(id="c" * 32))
        with store.session() as session:
            assert session.get(KeyRecord, "c" * 32) is not None


# --- migrations -------------------------------------------------------------------------------


def test_migrations_have_one_head_and_short_ids() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].revision == "0001"
    assert revisions[-1].down_revision is None
    for revision in revisions:
        assert len(revision.revision) <= 32  # fits alembic_version.version_num


def test_migrations_match_the_models(store: Store) -> None:
    def mine(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) in MY_TABLES

    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": mine}
        )
        assert compare_metadata(context, Base.metadata) == []
        names = {ix["name"] for ix in inspect(connection).get_indexes("key_records")}
        assert names == {"ix_key_records_fingerprint_sha256"}
        assert inspect(connection).get_pk_constraint("key_records")["name"] == "pk_key_records"


_BROKEN_MIGRATION = """
from alembic import op
import sqlalchemy as sa
revision = "9999"
down_revision = HEAD
branch_labels = None
depends_on = None
def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("SELECT no_such_column FROM half_done")
def downgrade():
    pass
"""


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrate.head_revision()
    broken = _BROKEN_MIGRATION.replace("HEAD", repr(head))
    (scripts / "versions" / "9999_broken.py").write_text(broken)
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(StoreError) as err:
        migrate.upgrade(engine, lock_path=tmp_path / "lock", script_location=scripts)
    assert err.value.code == "store_migration_failed"
    assert "no_such_column" in err.value.message
    assert inspect(engine).get_table_names() == []  # not even key_records from 0001
    engine.dispose()


def test_database_from_a_newer_repolink_is_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with Store.open(settings) as store, store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError) as err:
        Store.open(settings)
    assert err.value.code == "store_schema_newer"
    assert "9999" in err.value.message


def test_declared_heads_are_alembics_head() -> None:
    head = migrate.head_revision()
    assert head is not None
    assert migrate.declared_heads() == frozenset({head})


def _write_revisions(root: Path, revisions: dict[str, str]) -> Path:
    (root / "versions").mkdir(parents=True)
    for revision, down in revisions.items():
        body = f'revision: str = "{revision}"\ndown_revision = {down}\n'
        (root / "versions" / f"{revision}_x.py").write_text(body)
    return root


def test_declared_heads_follow_branches_and_merges(tmp_path: Path) -> None:
    branches = {"a": "None", "b": '"a"', "c": '"a"'}
    assert migrate.declared_heads(_write_revisions(tmp_path / "one", branches)) == frozenset(
        {"b", "c"}
    )
    merged = {**branches, "d": '("b", "c")'}
    assert migrate.declared_heads(_write_revisions(tmp_path / "two", merged)) == frozenset({"d"})


def test_declared_heads_are_unknown_unless_plain_literals(tmp_path: Path) -> None:
    computed = _write_revisions(tmp_path / "computed", {"a": "None", "b": "PARENT"})
    assert migrate.declared_heads(computed) is None
    missing = _write_revisions(tmp_path / "missing", {"a": "None"})
    (missing / "versions" / "b_x.py").write_text("down_revision = 'a'\n")
    assert migrate.declared_heads(missing) is None


_OPEN_AND_LIST_ALEMBIC = """
import sys
from pathlib import Path
from repolink.settings import Settings
from repolink.store import Store
with Store.open(Settings(data_dir=Path(sys.argv[1]))):
    print(sorted(name for name in sys.modules if name.split(".")[0] == "alembic"))
"""


def test_opening_a_current_database_does_not_import_alembic(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("REPOLINK_DATABASE_URL", None)
    argv = [sys.executable, "-c", _OPEN_AND_LIST_ALEMBIC, str(tmp_path / "data")]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() != "[]"  # a new database: migrated by Alembic
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "[]"


def test_a_database_behind_is_still_migrated(tmp_path: Path) -> None:
    older = tmp_path / "older"
    shutil.copytree(migrate.MIGRATIONS_DIR, older, ignore=shutil.ignore_patterns("__pycache__"))
    for path in (older / "versions").glob("*.py"):
        if path.name != "__init__.py" and not path.name.startswith(("0001_", "0002_")):
            path.unlink()
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(engine, lock_path=tmp_path / "lock", script_location=older)
    assert migrate.current_revision(engine) == "0002"
    migrate.upgrade(engine, lock_path=tmp_path / "lock")
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


# --- sessions -------------------------------------------------------------------------------


def test_session_commits_on_success_and_rolls_back_on_error(store: Store) -> None:
    with store.session() as session:
        session.add(key_record(id="c" * 32))
    with pytest.raises(RuntimeError), store.session() as session:
        session.add(key_record(id="d" * 32))
        session.flush()
        raise RuntimeError("boom")
    with store.session() as session:
        ids = set(session.scalars(select(KeyRecord.id)))
    assert ids == {"c" * 32}


def test_writing_commits_on_success_and_rolls_back_on_error(store: Store) -> None:
    table = KeyRecord.__table__
    with store.writing() as db:
        db.execute(table.insert(), [vars_of(key_record(id="e" * 32))])
    with pytest.raises(RuntimeError), store.writing() as db:
        db.execute(table.insert(), [vars_of(key_record(id="f" * 32))])
        raise RuntimeError("boom")
    with store.reading() as db:
        assert set(db.scalars(select(KeyRecord.id))) == {"e" * 32}


def test_writers_on_many_threads_and_a_session_all_commit(store: Store) -> None:
    """The writers of one process take turns, beside an ORM session writing at the same
    time: every row arrives, none is refused as locked."""
    table = KeyRecord.__table__

    def write(thread: int) -> None:
        for number in range(10):
            with store.writing() as db:
                db.execute(table.insert(), [vars_of(key_record(id=f"{thread:016d}{number:016d}"))])

    with ThreadPoolExecutor(max_workers=8) as pool:
        writes = [pool.submit(write, thread) for thread in range(8)]
        for number in range(10):
            with store.session() as session:
                session.add(key_record(id=f"s{number:031d}"))
        for done in writes:
            done.result()
    with store.reading() as db:
        assert db.scalar(select(func.count()).select_from(table)) == 90


def vars_of(record: KeyRecord) -> dict[str, Any]:
    return {column.key: getattr(record, column.key) for column in KeyRecord.__table__.columns}


def test_objects_stay_readable_after_commit(store: Store) -> None:
    with store.session() as session:
        record = key_record(label="still here")
        session.add(record)
    assert record.label == "still here"


def test_key_record_repr_hides_the_ciphertext() -> None:
    record = key_record(private_key_encrypted=b"\x01SECRET-CIPHERTEXT", vault_key_version=1)
    assert "SECRET" not in repr(record)
    assert "private=True" in repr(record)


def test_timestamps_come_back_timezone_aware_utc(store: Store) -> None:
    cest = timezone(timedelta(hours=2))
    created = datetime(2024, 5, 1, 12, 30, tzinfo=cest)
    with store.session() as session:
        session.add(key_record(id="e" * 32, created_at=created))
    with store.session() as session:
        loaded = session.get(KeyRecord, "e" * 32)
        assert loaded is not None
        assert loaded.created_at == created
        assert loaded.created_at.tzinfo == UTC
        assert loaded.created_at.hour == 10
        assert loaded.last_used_at is None


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        UTCDateTime().process_bind_param(datetime(2024, 1, 1), create_engine("sqlite://").dialect)


# --- failures on open -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_bad_database_url(tmp_path: Path, url: str) -> None:
    with pytest.raises(StoreError) as err:
        Store.open(settings_for(tmp_path, database_url=url))
    assert err.value.code == "store_url_invalid"
    assert "REPOLINK_DATABASE_URL" in err.value.hint


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg2") is not None, reason="psycopg2 is installed here"
)
def test_missing_driver_is_named_and_password_is_not_shown(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://repolink:hunter2-secret@db.example/repolink"
    with pytest.raises(StoreError) as err:
        Store.open(settings_for(tmp_path, database_url=url))
    assert err.value.code == "store_driver_missing"
    assert "psycopg" in err.value.hint
    assert "hunter2" not in err.value.one_line()


@pytest.mark.sqlite_only("the embedded SQLite file")
def test_database_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "data" / "repolink.db").mkdir(parents=True)
    with pytest.raises(StoreError) as err:
        Store.open(settings_for(tmp_path))
    assert err.value.code == "store_open_failed"
    assert "repolink.db" in err.value.message
    assert err.value.hint


@pytest.mark.sqlite_only("the embedded SQLite file")
def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "repolink.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as err:
        Store.open(settings_for(tmp_path))
    assert err.value.code == "store_open_failed"
    assert "not a database" in err.value.message


def test_unusable_data_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError) as err:
        Store.open(Settings(data_dir=tmp_path / "file" / "data"))
    assert err.value.code == "store_data_dir_unusable"
