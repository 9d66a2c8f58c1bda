"""signin_failures: failed sign-ins counted in the database, shared by every process

A row per failed sign-in, under a scope (account, source) and a key (the name as typed, the
client's address), kept while it is within the throttle's window.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signin_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_failures")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_signin_failures_scope_key_at", "signin_failures", ["scope", "key", "at"], unique=False
    )
    op.create_index(op.f("ix_signin_failures_at"), "signin_failures", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_signin_failures_at"), table_name="signin_failures")
    op.drop_index("ix_signin_failures_scope_key_at", table_name="signin_failures")
    op.drop_table("signin_failures")
