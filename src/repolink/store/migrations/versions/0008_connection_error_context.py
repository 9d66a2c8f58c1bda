"""repository connections keep their last error's reason and context

An adapter words the fix of a stored diagnosis its own way (the CLI names the command) from the
error's code, reason and context, as it does for an error raised in front of it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.add_column(sa.Column("error_reason", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("error_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.drop_column("error_context")
        batch.drop_column("error_reason")
