"""built-in host: workspaces, hosted repositories, account keys and access keys

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("key_type", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("fingerprint_md5", sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "host_workspaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=62), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_workspaces")),
        sa.UniqueConstraint("name", name=op.f("uq_host_workspaces_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "host_repositories",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=62), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["host_workspaces.id"],
            name=op.f("fk_host_repositories_workspace_id_host_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_repositories")),
        sa.UniqueConstraint("workspace_id", "slug", name=op.f("uq_host_repositories_workspace_id")),
    )
    op.create_table(
        "host_account_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        *_key_columns(),
        sa.Column("added_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["host_workspaces.id"],
            name=op.f("fk_host_account_keys_workspace_id_host_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_account_keys")),
        sa.UniqueConstraint(
            "workspace_id",
            "fingerprint_sha256",
            name=op.f("uq_host_account_keys_workspace_id"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_host_account_keys_fingerprint_sha256"),
        "host_account_keys",
        ["fingerprint_sha256"],
        unique=False,
    )
    op.create_table(
        "host_access_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.String(length=32), nullable=False),
        *_key_columns(),
        sa.Column("writable", sa.Boolean(), nullable=False),
        sa.Column("added_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["host_repositories.id"],
            name=op.f("fk_host_access_keys_repository_id_host_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_access_keys")),
        sa.UniqueConstraint(
            "repository_id",
            "fingerprint_sha256",
            name=op.f("uq_host_access_keys_repository_id"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_host_access_keys_fingerprint_sha256"),
        "host_access_keys",
        ["fingerprint_sha256"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_host_access_keys_fingerprint_sha256"), table_name="host_access_keys")
    op.drop_table("host_access_keys")
    op.drop_index(op.f("ix_host_account_keys_fingerprint_sha256"), table_name="host_account_keys")
    op.drop_table("host_account_keys")
    op.drop_table("host_repositories")
    op.drop_table("host_workspaces")
