"""key rules: a project's additional keys and its URL prefix → key rules

Revision ID: 0007
Revises: 0006
Create Date: 2025-01-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "additional_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("key_record_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_additional_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["key_record_id"],
            ["key_records.id"],
            name=op.f("fk_additional_keys_key_record_id_key_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_additional_keys")),
        sa.UniqueConstraint(
            "project_id", "fingerprint_sha256", name=op.f("uq_additional_keys_project_id")
        ),
        sa.UniqueConstraint("key_record_id", name=op.f("uq_additional_keys_key_record_id")),
    )
    op.create_table(
        "key_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=2048), nullable=False),
        sa.Column("additional_key_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_key_rules_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["additional_key_id"],
            ["additional_keys.id"],
            name=op.f("fk_key_rules_additional_key_id_additional_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_rules")),
        sa.UniqueConstraint("project_id", "prefix", name=op.f("uq_key_rules_project_id")),
    )


def downgrade() -> None:
    op.drop_table("key_rules")
    op.drop_table("additional_keys")
