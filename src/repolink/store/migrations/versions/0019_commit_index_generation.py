"""repository connections count the changes of their commit index (index_generation)

Every insert, update and delete of a connection's ``commits`` or ``refs`` rows adds to its
``index_generation``, by triggers of the database: whoever writes the index (a fetch in any
server or worker process, a hide through the API or the CLI) moves it, with no writer having
to remember. A reader that saw the same generation twice saw the same index, so a commit page
built at one generation can be answered again until it moves (the HTTP API's page cache).

The triggers themselves are :mod:`repolink.store.index_triggers`'s: every migration run drops
them before its first revision and installs them after its last one when the schema has the
column (``env.py``), so a later revision may recreate ``commits``, ``refs`` or
``repository_connections`` without losing them or SQLite refusing the copy.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "repository_connections",
        sa.Column("index_generation", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    # The triggers were dropped before this run (env.py) and are not installed after it.
    with op.batch_alter_table("repository_connections") as batch:
        batch.drop_column("index_generation")
