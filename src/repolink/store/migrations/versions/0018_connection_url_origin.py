"""repository connections remember whether their URL came from an API client

Such a URL is judged by the network policy again at every connection, on the address ssh is
then pinned to (DESIGN.md §5: a name may resolve elsewhere at fetch time than when it was
given). Connections saved before this revision read as the operator's (not checked).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.add_column(sa.Column("url_origin", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository_connections") as batch:
        batch.drop_column("url_origin")
