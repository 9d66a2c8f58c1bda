"""repository connections remember the host API their deploy key was registered on

A registration that failed can be retried on the same connection, and a key rotation of a
registered connection adds the new key to, and removes the retired one from, that same API.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.add_column(sa.Column("registered_api_root", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.drop_column("registered_api_root")
