"""prepared deploy keys: a project's deploy key generated before its connection is saved

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prepared_deploy_keys",
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("key_record_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_prepared_deploy_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["key_record_id"],
            ["key_records.id"],
            name=op.f("fk_prepared_deploy_keys_key_record_id_key_records"),
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_prepared_deploy_keys")),
        sa.UniqueConstraint("key_record_id", name=op.f("uq_prepared_deploy_keys_key_record_id")),
    )


def downgrade() -> None:
    op.drop_table("prepared_deploy_keys")
