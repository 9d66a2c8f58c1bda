"""connection fetched_by: the worker whose mirror holds the connection's last successful fetch

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.add_column(sa.Column("fetched_by", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.drop_column("fetched_by")
