"""platform: projects, repository connections, the commit index and refs

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=62), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("slug", name=op.f("uq_projects_slug")),
    )
    op.create_table(
        "repository_connections",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("deploy_key_id", sa.String(length=32), nullable=False),
        sa.Column("key_origin", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_hint", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_repository_connections_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deploy_key_id"],
            ["key_records.id"],
            name=op.f("fk_repository_connections_deploy_key_id_key_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository_connections")),
        sa.UniqueConstraint("project_id", name=op.f("uq_repository_connections_project_id")),
    )
    op.create_table(
        "commits",
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("sha", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("parents", sa.Text(), nullable=False),
        sa.Column("author_name", sa.Text(), nullable=False),
        sa.Column("author_email", sa.Text(), nullable=False),
        sa.Column("author_time", sa.BigInteger(), nullable=False),
        sa.Column("commit_time", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("hidden", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["repository_connections.id"],
            name=op.f("fk_commits_connection_id_repository_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "sha", name=op.f("pk_commits")),
    )
    op.create_index(
        "ix_commits_listing", "commits", ["connection_id", "commit_time", "seq"], unique=False
    )
    op.create_table(
        "refs",
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["repository_connections.id"],
            name=op.f("fk_refs_connection_id_repository_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "name", name=op.f("pk_refs")),
    )
    op.create_index("ix_refs_commit", "refs", ["connection_id", "commit_sha"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_refs_commit", table_name="refs")
    op.drop_table("refs")
    op.drop_index("ix_commits_listing", table_name="commits")
    op.drop_table("commits")
    op.drop_table("repository_connections")
    op.drop_table("projects")
