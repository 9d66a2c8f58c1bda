"""The migrations on SQLite and on PostgreSQL: one revision at a time up to the head and back
down to nothing (with the commit index's triggers, and PostgreSQL's change announcements at the
head), and the commit index's triggers through a later revision that rebuilds the tables they
are on (or name)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from repolink.store import change_triggers, index_triggers, migrate
from repolink.store.base import Base
from repolink.store.engine import make_engine, parse_database_url

pytestmark = pytest.mark.databases

ALL_TRIGGERS = index_triggers.trigger_names()


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    made = make_engine(parse_database_url(empty_database_url))
    try:
        yield made
    finally:
        made.dispose()


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def triggers(engine: Engine) -> frozenset[tuple[str, str]]:
    with engine.connect() as connection:
        return index_triggers.installed(connection)


def change_triggers_of(engine: Engine) -> frozenset[tuple[str, str]]:
    with engine.connect() as connection:
        return change_triggers.installed(connection)


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": migrate.is_ours}
        )
        return list(compare_metadata(context, Base.metadata))


def test_every_migration_applies_one_at_a_time_and_back(engine: Engine, tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    steps = revisions()
    for expected in steps:
        migrate.upgrade(engine, lock_path=lock, revision="+1")
        assert migrate.current_revision(engine) == expected
        generation = expected >= "0019"
        assert triggers(engine) == (ALL_TRIGGERS if generation else frozenset())
    assert differences(engine) == []
    for expected in [*reversed(steps[:-1]), None]:
        migrate.downgrade(engine, "-1", lock_path=lock)
        assert migrate.current_revision(engine) == expected
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine, lock_path=lock)
    assert migrate.current_revision(engine) == steps[-1]
    assert triggers(engine) == ALL_TRIGGERS
    # PostgreSQL's change announcements (the pages' live updates); SQLite has none.
    postgresql = engine.dialect.name == "postgresql"
    expected = change_triggers.trigger_names() if postgresql else frozenset()
    assert change_triggers_of(engine) == expected
    assert differences(engine) == []


# A later revision that rebuilds (copies) the commits and refs tables, and on SQLite the
# connections' too (on PostgreSQL, other tables' foreign keys keep that one from a rebuild).
_REBUILDING = """
from alembic import op
revision = "9999"
down_revision = HEAD
branch_labels = None
depends_on = None
def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("repository_connections",) * sqlite + ("commits", "refs"):
        with op.batch_alter_table(table, recreate="always"):
            pass
def downgrade():
    pass
"""


def test_the_index_triggers_survive_a_later_revision_that_rebuilds_their_tables(
    engine: Engine, tmp_path: Path
) -> None:
    migrate.upgrade(engine, lock_path=tmp_path / "lock")
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    later = _REBUILDING.replace("HEAD", repr(migrate.head_revision()))
    (scripts / "versions" / "9999_rebuild.py").write_text(later)

    migrate.upgrade(engine, lock_path=tmp_path / "lock", script_location=scripts)

    assert migrate.current_revision(engine) == "9999"
    assert triggers(engine) == ALL_TRIGGERS
