"""hosted repositories keep the description Bitbucket clients send

Bitbucket clients create and update a repository with a description and read it back
(a client that compares what it sent with what it reads would otherwise see a change forever).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("host_repositories") as batch:
        batch.add_column(
            sa.Column("description", sa.Text(), nullable=False, server_default=sa.text("''"))
        )


def downgrade() -> None:
    with op.batch_alter_table("host_repositories") as batch:
        batch.drop_column("description")
