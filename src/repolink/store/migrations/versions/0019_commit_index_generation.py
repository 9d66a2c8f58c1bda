"""repository connections count the changes of their commit index (index_generation)

Every insert, update and delete of a connection's ``commits`` or ``refs`` rows adds to its
``index_generation``, by triggers of the database: whoever writes the index (a fetch in any
server or worker process, a hide through the API or the CLI) moves it, with no writer having
to remember. A reader that saw the same generation twice saw the same index, so a commit page
built at one generation can be answered again until it moves (the HTTP API's page cache).

SQLite has row triggers only (an indexing batch of 5000 commits makes 5000 increments of one
row in its own transaction: a few milliseconds); PostgreSQL gets statement triggers over the
statement's transition table, one increment per connection and statement.

For a later migration on SQLite: recreating ``commits`` or ``refs`` (a batch operation that
copies the table) drops their triggers, and recreating ``repository_connections`` fails on
them ("error in trigger …: no such table"); drop the triggers first and create them again
after, with the statements of this revision.

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

_TABLES = ("commits", "refs")
# (event, the row of the event that names the connection) for SQLite's row triggers, and the
# transition table PostgreSQL's statement triggers read it from.
_EVENTS = (
    ("INSERT", "NEW", "NEW TABLE"),
    ("UPDATE", "NEW", "NEW TABLE"),
    ("DELETE", "OLD", "OLD TABLE"),
)
_BUMP = "UPDATE repository_connections SET index_generation = index_generation + 1"


def _trigger(table: str, event: str) -> str:
    return f"{table}_{event.lower()}_index_generation"


def upgrade() -> None:
    op.add_column(
        "repository_connections",
        sa.Column("index_generation", sa.Integer(), nullable=False, server_default="0"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            # Fixed texts of this module only; nothing comes from outside.
            "CREATE FUNCTION bump_index_generation() RETURNS trigger LANGUAGE plpgsql AS $$"  # noqa: S608
            f" BEGIN {_BUMP} WHERE id IN (SELECT DISTINCT connection_id FROM changed);"
            " RETURN NULL; END $$"
        )
        for table in _TABLES:
            for event, _row, transition in _EVENTS:
                op.execute(
                    f"CREATE TRIGGER {_trigger(table, event)} AFTER {event} ON {table}"
                    f" REFERENCING {transition} AS changed FOR EACH STATEMENT"
                    " EXECUTE FUNCTION bump_index_generation()"
                )
        return
    for table in _TABLES:
        for event, row, _transition in _EVENTS:
            op.execute(
                f"CREATE TRIGGER {_trigger(table, event)} AFTER {event} ON {table} FOR EACH ROW"
                f" BEGIN {_BUMP} WHERE id = {row}.connection_id; END"
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in _TABLES:
        for event, _row, _transition in _EVENTS:
            on = f" ON {table}" if postgresql else ""
            op.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, event)}{on}")
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS bump_index_generation()")
    with op.batch_alter_table("repository_connections") as batch:
        batch.drop_column("index_generation")
