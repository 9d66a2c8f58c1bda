"""repository connections may be polled: an interval in minutes (none: off) and the next poll

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.add_column(sa.Column("poll_interval_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.drop_column("next_poll_at")
        batch.drop_column("poll_interval_minutes")
