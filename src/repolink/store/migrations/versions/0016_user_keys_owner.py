"""user keys name their owner by a foreign key to users

The user_keys table came before the users table; its user_id now refers to users.id.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_keys") as batch:
        batch.create_foreign_key(
            op.f("fk_user_keys_user_id_users"), "users", ["user_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index(op.f("ix_user_keys_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_keys") as batch:
        batch.drop_index(op.f("ix_user_keys_user_id"))
        batch.drop_constraint(op.f("fk_user_keys_user_id_users"), type_="foreignkey")
