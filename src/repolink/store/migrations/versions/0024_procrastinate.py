"""procrastinate: the job queue's schema on PostgreSQL

On PostgreSQL, jobs run on procrastinate (repolink.jobs.procrastinate_backend); its tables,
types, functions and triggers (all named ``procrastinate_…``) are applied here, so that
``repolink admin migrate`` brings them with repolink's own and one revision says what a
database holds. The schema is the one of the procrastinate version pinned in pyproject.toml
(3.10); a later procrastinate that changes it comes with a migration of ours applying its
migration files. On SQLite this revision changes nothing.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # The driver's own connection, in the migration's transaction: the schema is many
    # statements (function bodies with $$ and %), which psycopg runs as one text without
    # parameters; SQLAlchemy's text() would read ':name' in it as bind parameters.
    raw = bind.connection.dbapi_connection
    assert raw is not None
    raw.cursor().execute(SchemaManager.get_schema())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Tables first (their triggers go with them), then functions and types.
    op.execute(
        """
        DO $$
        DECLARE item record;
        BEGIN
            FOR item IN SELECT tablename FROM pg_tables
                WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%'
            LOOP
                EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename);
            END LOOP;
            FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
            LOOP
                EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature);
            END LOOP;
            FOR item IN SELECT t.typname FROM pg_type t
                JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%'
                    AND t.typtype IN ('e', 'c')
            LOOP
                EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
            END LOOP;
        END $$;
        """
    )
