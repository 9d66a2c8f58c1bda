"""user keys: a project's keys held for one of its users (CircleCI's checkout "user key")

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_record_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_user_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["key_record_id"],
            ["key_records.id"],
            name=op.f("fk_user_keys_key_record_id_key_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_keys")),
        sa.UniqueConstraint("project_id", "user_id", name="uq_user_keys_project_user"),
        sa.UniqueConstraint("key_record_id", name=op.f("uq_user_keys_key_record_id")),
    )
    op.create_index(
        op.f("ix_user_keys_fingerprint_sha256"), "user_keys", ["fingerprint_sha256"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_user_keys_fingerprint_sha256"), table_name="user_keys")
    op.drop_table("user_keys")
