"""repolink.store.plain: fixed SQL on stdlib sqlite3 for the embedded database, the same texts
on a SQLAlchemy Core connection elsewhere — and the same answers from both (issue 10 §2)."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.errors import StoreError
from repolink.platform.projects import ProjectService
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.plain import CoreReader, SQLiteReader, utc_datetime

pytestmark = pytest.mark.databases


def _populated(tmp_path: Path) -> Settings:
    """A data directory holding projects, one of them connected."""
    settings = Settings(data_dir=tmp_path / "data")
    with Repolink(settings) as app:
        for name in ("Zeta", "Alpha", "Middle one"):
            app.projects.create_project(name)
        app.connections.save("alpha", "git@example.com:team/repo.git")
    return settings


@pytest.mark.sqlite_only("the embedded SQLite file read through sqlite3")
def test_a_current_embedded_store_reads_through_sqlite3_and_opens_sqlalchemy_on_demand(
    tmp_path: Path,
) -> None:
    settings = _populated(tmp_path)
    with Store.open(settings) as store:
        assert store._engine is None  # nothing of SQLAlchemy made for the plain read
        with store.plain() as db:
            assert isinstance(db, SQLiteReader)
            assert db.scalar("SELECT count(*) FROM projects") == 3
        with store.session() as session:  # the ORM still works: the engine is made now
            assert session.connection().dialect.name == "sqlite"
        assert store._engine is not None
    with Store.open(settings, native_sqlite=False) as store, store.plain() as db:
        assert isinstance(db, CoreReader)
        assert db.scalar("SELECT count(*) FROM projects") == 3


def test_the_project_list_is_the_same_on_both_connections(tmp_path: Path) -> None:
    settings = _populated(tmp_path)
    with Store.open(settings) as native, Store.open(settings, native_sqlite=False) as core:
        through_sqlite3 = ProjectService(settings, native).list_projects()
        through_sqlalchemy = ProjectService(settings, core).list_projects()
    assert through_sqlite3 == through_sqlalchemy
    assert [(p.slug, p.connected) for p in through_sqlite3] == [
        ("alpha", True),
        ("middle-one", False),
        ("zeta", False),
    ]
    assert all(p.created_at.tzinfo is UTC for p in through_sqlite3)


def test_the_rows_are_the_same_on_both_connections(tmp_path: Path) -> None:
    settings = _populated(tmp_path)
    sql = (
        "SELECT p.slug, c.url, c.state FROM projects p"
        " LEFT JOIN repository_connections c ON c.project_id = p.id"
        " WHERE p.slug <> :skip ORDER BY p.slug"
    )
    with Store.open(settings) as native, Store.open(settings, native_sqlite=False) as core:
        with native.plain() as db:
            plain_rows = db.rows(sql, {"skip": "zeta"})
        with core.plain() as db:
            core_rows = db.rows(sql, {"skip": "zeta"})
    assert plain_rows == core_rows
    assert plain_rows[0]["url"] == "git@example.com:team/repo.git"
    assert plain_rows[1] == {"slug": "middle-one", "url": None, "state": None}


@pytest.mark.sqlite_only("the embedded SQLite file read through sqlite3")
def test_only_a_store_at_the_newest_revision_skips_the_migrations(tmp_path: Path) -> None:
    fresh = Settings(data_dir=tmp_path / "fresh")
    with Store.open(fresh) as store:
        assert store._engine is not None  # a new database: migrated, through SQLAlchemy
    settings = _populated(tmp_path)
    with sqlite3.connect(settings.resolved_data_dir / "repolink.db") as raw:
        raw.execute("UPDATE alembic_version SET version_num = '9999'")
    # Not the revision this repolink knows: Alembic judges it, whatever the plain check saw.
    with pytest.raises(StoreError) as newer:
        Store.open(settings)
    assert newer.value.code == "store_schema_newer"


@pytest.mark.sqlite_only("the embedded SQLite file read through sqlite3")
def test_a_plain_read_that_fails_is_store_unavailable(tmp_path: Path) -> None:
    settings = _populated(tmp_path)
    with Store.open(settings) as store:
        shutil.rmtree(settings.resolved_data_dir)
        (settings.resolved_data_dir / "repolink.db").mkdir(parents=True)
        with pytest.raises(StoreError) as failed, store.plain() as db:
            db.scalar("SELECT 1")
    assert failed.value.code == "store_unavailable"
    assert str(settings.resolved_data_dir) in failed.value.message


def test_stored_timestamps_become_aware_utc_datetimes() -> None:
    assert utc_datetime("2026-12-04 17:19:59.123456") == datetime(
        2026, 12, 4, 17, 19, 59, 123456, tzinfo=UTC
    )
    plus_two = timezone(timedelta(hours=2))
    assert utc_datetime(datetime(2026, 12, 4, 19, 0, tzinfo=plus_two)) == datetime(
        2026, 12, 4, 17, 0, tzinfo=UTC
    )
    assert utc_datetime(datetime(2026, 12, 4, 17, 0)).tzinfo is UTC
