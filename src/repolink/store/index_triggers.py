"""The database triggers that move a connection's ``index_generation`` (migration 0019).

Every insert, update and delete of a connection's ``commits`` or ``refs`` rows adds to its
``index_generation``: whoever writes the index moves it, with no writer having to remember.
SQLite has row triggers only; PostgreSQL gets statement triggers over the statement's
transition table, one increment per connection and statement.

The triggers belong to no revision: every migration run (``migrations/env.py``) drops them
before its first revision and installs them again after its last one, when the schema has the
column. So a revision may recreate ``commits``, ``refs`` or ``repository_connections`` (SQLite's
batch copy, a table rebuilt on PostgreSQL) without losing them — a copied table has no
triggers — and without SQLite refusing to rename a table their bodies name.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect

TABLES = ("commits", "refs")
# (event, the row of the event that names the connection) for SQLite's row triggers, and the
# transition table PostgreSQL's statement triggers read it from.
_EVENTS = (
    ("INSERT", "NEW", "NEW TABLE"),
    ("UPDATE", "NEW", "NEW TABLE"),
    ("DELETE", "OLD", "OLD TABLE"),
)
_BUMP = "UPDATE repository_connections SET index_generation = index_generation + 1"
_FUNCTION = "bump_index_generation"


def trigger_names() -> frozenset[tuple[str, str]]:
    """Each trigger as (table, name)."""
    return frozenset((table, _name(table, event)) for table in TABLES for event, _, _ in _EVENTS)


def _name(table: str, event: str) -> str:
    return f"{table}_{event.lower()}_index_generation"


def drop(connection: Connection) -> None:
    """Drop the triggers (and PostgreSQL's function) wherever they are."""
    postgresql = connection.dialect.name == "postgresql"
    present = set(inspect(connection).get_table_names())
    for table, name in sorted(trigger_names()):
        if table in present:
            on = f" ON {table}" if postgresql else ""
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}{on}")
    if postgresql:
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")


def install(connection: Connection) -> bool:
    """(Re)create the triggers if the schema has ``index_generation``; whether it has."""
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    if not {"repository_connections", *TABLES} <= present or "index_generation" not in {
        column["name"] for column in inspector.get_columns("repository_connections")
    }:
        return False
    drop(connection)
    for statement in _statements(connection.dialect.name):
        connection.exec_driver_sql(statement)
    return True


def _statements(dialect: str) -> list[str]:
    # Fixed texts of this module only; nothing comes from outside.
    if dialect == "postgresql":
        return [
            f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$"  # noqa: S608
            f" BEGIN {_BUMP} WHERE id IN (SELECT DISTINCT connection_id FROM changed);"
            " RETURN NULL; END $$",
            *(
                f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table}"
                f" REFERENCING {transition} AS changed FOR EACH STATEMENT"
                f" EXECUTE FUNCTION {_FUNCTION}()"
                for table in TABLES
                for event, _row, transition in _EVENTS
            ),
        ]
    return [
        f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table} FOR EACH ROW"
        f" BEGIN {_BUMP} WHERE id = {row}.connection_id; END"
        for table in TABLES
        for event, row, _transition in _EVENTS
    ]


def installed(connection: Connection) -> frozenset[tuple[str, str]]:
    """The index triggers the database has, as (table, name)."""
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal"
        )
    else:
        rows = connection.exec_driver_sql(
            "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"
        )
    return frozenset((str(table), str(name)) for table, name in rows) & trigger_names()
