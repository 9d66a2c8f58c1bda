"""change notifications: PostgreSQL announces a project's changes to listening API processes

On PostgreSQL, every change of a connection's row (its index generation, its state) and of a
fetch run's state or progress is announced with ``pg_notify('repolink_changes', <project
id>)``, so the pages' live updates reach users of any API process. The triggers are
(re)installed by every migration run, after its last revision (``migrations/env.py``,
``repolink.store.change_triggers``), as the commit index's are: this revision changes nothing
itself, it makes a database already at 0025 run once and so get them. On SQLite nothing.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing: the run's end installs the triggers (see the module's docstring)."""


def downgrade() -> None:
    """Nothing to undo: the next run's start drops the triggers."""
