"""Migration 0002 creates exactly the host tables the models describe."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table, inspect

from repolink.store import Store, migrate
from repolink.store.base import Base
from repolink.store.models import host as models

pytestmark = pytest.mark.databases

HOST_TABLES = {
    models.Workspace.__tablename__,
    models.HostedRepository.__tablename__,
    models.AccountKey.__tablename__,
    models.AccessKey.__tablename__,
}


def _table_of(diff: Any) -> str:
    operation = diff[0] if isinstance(diff, list) else diff  # modify_* come as lists
    subject = operation[1]
    if isinstance(subject, Table):
        return subject.name
    if hasattr(subject, "table"):  # indexes and constraints
        return str(subject.table.name)
    return str(operation[2])  # column operations: (op, schema, table, …)


def _concerns_host_table(diff: Any) -> bool:
    return _table_of(diff) in HOST_TABLES


def test_migration_matches_models(host_store: Store) -> None:
    with host_store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": migrate.is_ours}
        )
        differences = [
            d for d in compare_metadata(context, Base.metadata) if _concerns_host_table(d)
        ]
    assert differences == []


def test_unique_constraints_and_cascades(host_store: Store) -> None:
    inspector = inspect(host_store.engine)
    uniques = {
        table: {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        for table in HOST_TABLES
    }
    assert ("workspace_id", "slug") in uniques["host_repositories"]
    assert ("repository_id", "fingerprint_sha256") in uniques["host_access_keys"]
    assert ("workspace_id", "fingerprint_sha256") in uniques["host_account_keys"]
    for table in ("host_repositories", "host_access_keys", "host_account_keys"):
        [foreign_key] = inspector.get_foreign_keys(table)
        assert foreign_key["options"].get("ondelete") == "CASCADE"
