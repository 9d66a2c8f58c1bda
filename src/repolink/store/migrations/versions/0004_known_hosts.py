"""known hosts: host keys the platform trusts beyond its shipped pins

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "known_hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("key_type", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("overrides_pin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_hosts")),
        sa.UniqueConstraint(
            "host", "port", "fingerprint_sha256", name="uq_known_hosts_host_port_fingerprint"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_known_hosts_host_port", "known_hosts", ["host", "port"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_known_hosts_host_port", table_name="known_hosts")
    op.drop_table("known_hosts")
