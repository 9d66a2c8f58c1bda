"""key rotations remember whether their new key was generated or imported

A rotation may now take a key pair the caller uploads (the platform API's rotate); once it
completes, the connection's ``key_origin`` says "imported" for it, as it does for a connection
made with an imported key. Rows from before were all generated.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite takes NOT NULL with a constant default), not a batch: a batch
    # rebuilds the table on SQLite and could lose the partial unique index of pending rows.
    op.add_column(
        "key_rotations",
        sa.Column("key_origin", sa.String(length=16), nullable=False, server_default="generated"),
    )


def downgrade() -> None:
    op.drop_column("key_rotations", "key_origin")
