"""PostgreSQL's announcements of a project's changes: ``pg_notify('repolink_changes',
<project id>)`` whenever its connection's row or one of its fetch runs changes (migration 0026).

Every change of the commit index moves the connection's ``index_generation``
(:mod:`repolink.store.index_triggers`), so the connection's row covers the index, hidden
commits and the connection's state; a fetch run's row covers the fetch state — queued,
running, its progress, its outcome (a lease renewed is no change anyone shows, and is not
announced). PostgreSQL delivers a notification when the writing transaction commits, once per
payload and transaction, to every session that ``LISTEN``s — any API process
(:mod:`repolink.platform.changes`), whichever process wrote. SQLite has nothing to announce
to: that feed wakes on its own process's writes.

Like the index triggers, these belong to no revision: every migration run drops them before
its first revision and installs them after its last one, so a revision that rebuilds a table
does not lose them.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect

CHANNEL = "repolink_changes"
_FUNCTION = "repolink_notify_change"
# (table, trigger, events, condition)
_TRIGGERS = (
    (
        "repository_connections",
        "repository_connections_notify_change",
        "INSERT OR UPDATE OR DELETE",
        "",
    ),
    ("fetch_runs", "fetch_runs_notify_change", "INSERT OR DELETE", ""),
    (
        "fetch_runs",
        "fetch_runs_notify_state",
        "UPDATE",
        " WHEN (OLD.status IS DISTINCT FROM NEW.status"
        " OR OLD.progress::text IS DISTINCT FROM NEW.progress::text)",
    ),
)

# The columns the triggers read, by table.
_COLUMNS = {
    "repository_connections": {"project_id"},
    "fetch_runs": {"project_id", "status", "progress"},
}


def trigger_names() -> frozenset[tuple[str, str]]:
    """Each trigger as (table, name)."""
    return frozenset((table, name) for table, name, _, _ in _TRIGGERS)


def drop(connection: Connection) -> None:
    """Drop the triggers and their function wherever they are (PostgreSQL only)."""
    if connection.dialect.name != "postgresql":
        return
    present = set(inspect(connection).get_table_names())
    for table, name in sorted(trigger_names()):
        if table in present:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")


def install(connection: Connection) -> bool:
    """(Re)create the triggers on PostgreSQL when the schema has their tables; whether it did."""
    if connection.dialect.name != "postgresql":
        return False
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    if not {table for table, _ in trigger_names()} <= present:
        return False
    for table, needed in _COLUMNS.items():
        if not needed <= {column["name"] for column in inspector.get_columns(table)}:
            return False  # a revision before the one that made them
    drop(connection)
    # Fixed texts of this module only; nothing comes from outside.
    connection.exec_driver_sql(
        f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF TG_OP = 'DELETE' THEN PERFORM pg_notify('{CHANNEL}', OLD.project_id);"
        f" ELSE PERFORM pg_notify('{CHANNEL}', NEW.project_id); END IF;"
        " RETURN NULL; END $$"
    )
    for table, name, events, condition in _TRIGGERS:
        connection.exec_driver_sql(
            f"CREATE TRIGGER {name} AFTER {events} ON {table} FOR EACH ROW{condition}"
            f" EXECUTE FUNCTION {_FUNCTION}()"
        )
    return True


def installed(connection: Connection) -> frozenset[tuple[str, str]]:
    """The change triggers the database has, as (table, name)."""
    if connection.dialect.name != "postgresql":
        return frozenset()
    rows = connection.exec_driver_sql(
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE NOT t.tgisinternal"
    )
    return frozenset((str(table), str(name)) for table, name in rows) & trigger_names()
