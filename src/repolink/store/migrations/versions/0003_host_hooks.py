"""built-in host HTTP side: admin tokens, webhooks and webhook deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_host_tokens_token_hash")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "host_hooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["host_repositories.id"],
            name=op.f("fk_host_hooks_repository_id_host_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_hooks")),
        sa.UniqueConstraint("uuid", name=op.f("uq_host_hooks_uuid")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_host_hooks_repository_id"), "host_hooks", ["repository_id"], unique=False
    )
    op.create_table(
        "host_hook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hook_id", sa.Integer(), nullable=False),
        sa.Column("request_uuid", sa.String(length=36), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_response_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hook_id"],
            ["host_hooks.id"],
            name=op.f("fk_host_hook_deliveries_hook_id_host_hooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_hook_deliveries")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_host_hook_deliveries_hook_id"),
        "host_hook_deliveries",
        ["hook_id"],
        unique=False,
    )
    op.create_index(
        "ix_host_hook_deliveries_due",
        "host_hook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_host_hook_deliveries_due", table_name="host_hook_deliveries")
    op.drop_index(op.f("ix_host_hook_deliveries_hook_id"), table_name="host_hook_deliveries")
    op.drop_table("host_hook_deliveries")
    op.drop_index(op.f("ix_host_hooks_repository_id"), table_name="host_hooks")
    op.drop_table("host_hooks")
    op.drop_table("host_tokens")
