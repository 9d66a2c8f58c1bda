"""fetch runs: the history of every fetch, and the queue of fetch jobs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING_ONLY = "status = 'queued'"


def upgrade() -> None:
    op.create_table(
        "fetch_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("new_commits", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["repository_connections.id"],
            name=op.f("fk_fetch_runs_connection_id_repository_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_fetch_runs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fetch_runs")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_fetch_runs_waiting",
        "fetch_runs",
        ["connection_id"],
        unique=True,
        sqlite_where=sa.text(_WAITING_ONLY),
        postgresql_where=sa.text(_WAITING_ONLY),
    )
    op.create_index("ix_fetch_runs_connection", "fetch_runs", ["connection_id", "id"])
    op.create_index("ix_fetch_runs_due", "fetch_runs", ["status", "next_attempt_at"])
    op.create_index(op.f("ix_fetch_runs_project_id"), "fetch_runs", ["project_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_fetch_runs_project_id"), table_name="fetch_runs")
    op.drop_index("ix_fetch_runs_due", table_name="fetch_runs")
    op.drop_index("ix_fetch_runs_connection", table_name="fetch_runs")
    op.drop_index("uq_fetch_runs_waiting", table_name="fetch_runs")
    op.drop_table("fetch_runs")
