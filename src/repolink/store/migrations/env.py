"""Alembic environment: runs on the connection :mod:`repolink.store.migrate` hands over.

Revisions are short ordered strings ("0001", "0002", …), one file each in ``versions/``;
every file there is picked up. Write them by hand to match the models, and keep them free of
imports from repolink, so that old revisions never change when the models do. The commit
index's triggers and PostgreSQL's change announcements are not any revision's: every run drops
them first and installs them last (:mod:`repolink.store.index_triggers`,
:mod:`repolink.store.change_triggers`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from repolink.store import change_triggers, index_triggers
from repolink.store.base import Base
from repolink.store.migrate import is_ours

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "repolink migrations run through repolink.store (Store.open or `repolink admin migrate`)"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite can only alter tables by copying them; batch mode does that for every ALTER.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=is_ours,
)
with context.begin_transaction():
    # Dropped before the first revision and installed after the last, whatever the revisions
    # rebuild in between: see repolink.store.index_triggers.
    index_triggers.drop(connection)
    change_triggers.drop(connection)
    context.run_migrations()
    index_triggers.install(connection)
    change_triggers.install(connection)
