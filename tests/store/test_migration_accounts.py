"""The accounts migration: users, members, audit log; the host's admin tokens become API tokens and
keep working, as owner-less site-admin tokens; downgrading keeps them as host tokens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, inspect, text

from repolink.auth.principal import Principal
from repolink.auth.tokens import authenticate, hash_token
from repolink.settings import Settings
from repolink.store import Store, migrate

pytestmark = pytest.mark.databases

LEGACY_TOKEN = "rlh_" + "a" * 43
# The accounts migration's number, and the one before it, read from its file: renumbering it
# when another lands first must not need this test changed.
(ACCOUNTS_FILE,) = migrate.MIGRATIONS_DIR.glob("versions/*_accounts.py")
ACCOUNTS = int(ACCOUNTS_FILE.name[:4])
BEFORE = f"{ACCOUNTS - 1:04d}"


def migrations_up_to(tmp_path: Path, last: int) -> Path:
    """A copy of the migrations without those after ``last``."""
    older = tmp_path / f"upto-{last}"
    shutil.copytree(migrate.MIGRATIONS_DIR, older, ignore=shutil.ignore_patterns("__pycache__"))
    for path in (older / "versions").glob("0*.py"):
        if int(path.name[:4]) > last:
            path.unlink()
    return older


def before_accounts_with_a_host_token(tmp_path: Path, url: str) -> Engine:
    engine = create_engine(url)
    (tmp_path / "data").mkdir()
    migrate.upgrade(
        engine,
        lock_path=tmp_path / "lock",
        script_location=migrations_up_to(tmp_path, ACCOUNTS - 1),
    )
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO host_tokens (label, token_hash, created_at) "
                "VALUES ('ci', :hash, '2026-01-01 00:00:00.000000')"
            ),
            {"hash": hash_token(LEGACY_TOKEN)},
        )
    return engine


def test_a_host_admin_token_keeps_working_as_a_site_admin_token(
    tmp_path: Path, empty_database_url: str
) -> None:
    engine = before_accounts_with_a_host_token(tmp_path, empty_database_url)
    migrate.upgrade(engine, lock_path=tmp_path / "lock")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT id, name, prefix, user_id FROM api_tokens")).one()
    engine.dispose()
    assert tuple(row)[1:] == ("ci", "rlh_", None)
    settings = Settings(data_dir=tmp_path / "data", database_url=empty_database_url)
    with Store.open(settings) as store, store.session() as session:
        assert authenticate(session, settings, LEGACY_TOKEN) == Principal(
            None, f"token-{row[0]}", True
        )


def test_downgrading_keeps_the_owner_less_tokens_as_host_tokens(
    tmp_path: Path, empty_database_url: str
) -> None:
    engine = before_accounts_with_a_host_token(tmp_path, empty_database_url)
    script = migrations_up_to(tmp_path, ACCOUNTS)
    migrate.upgrade(engine, lock_path=tmp_path / "lock", script_location=script)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, site_admin, created_at) "
                "VALUES ('jane', false, '2026-01-01 00:00:00.000000')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) "
                "VALUES (1, 'laptop', 'rlp_', 'x', '2026-01-01 00:00:00.000000')"
            )
        )
    config = migrate.alembic_config(script)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT label, token_hash FROM host_tokens")).all()
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert [tuple(row) for row in rows] == [("ci", hash_token(LEGACY_TOKEN))]
    assert not {"users", "project_members", "audit_log", "api_tokens"} & tables
