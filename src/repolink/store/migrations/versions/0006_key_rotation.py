"""key rotation: a connection's pending and completed deploy key rotations

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING_ONLY = "state = 'pending'"


def upgrade() -> None:
    op.create_table(
        "key_rotations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("new_key_id", sa.String(length=32), nullable=False),
        sa.Column("old_key_id", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["repository_connections.id"],
            name=op.f("fk_key_rotations_connection_id_repository_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["new_key_id"],
            ["key_records.id"],
            name=op.f("fk_key_rotations_new_key_id_key_records"),
        ),
        sa.ForeignKeyConstraint(
            ["old_key_id"],
            ["key_records.id"],
            name=op.f("fk_key_rotations_old_key_id_key_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_rotations")),
        sa.UniqueConstraint("new_key_id", name=op.f("uq_key_rotations_new_key_id")),
    )
    op.create_index(
        "uq_key_rotations_pending",
        "key_rotations",
        ["connection_id"],
        unique=True,
        sqlite_where=sa.text(_PENDING_ONLY),
        postgresql_where=sa.text(_PENDING_ONLY),
    )


def downgrade() -> None:
    op.drop_index("uq_key_rotations_pending", table_name="key_rotations")
    op.drop_table("key_rotations")
