"""The head revisions the migration files declare, read without Alembic or SQLAlchemy.

Opening the store compares them with the database's ``alembic_version`` before anything
heavier is imported (:mod:`repolink.store.migrate`, :mod:`repolink.store.plain`): a command on a
database that is current never imports Alembic, and on the embedded SQLite file not even
SQLAlchemy (issue 10 §2). Reading the revision files costs under a millisecond.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# `revision: str = "0002"`, `down_revision = ("0003", "0004")` … at the start of a line.
_REVISION_ASSIGNMENT = re.compile(
    r"^(?P<name>revision|down_revision)\b[ \t]*(?::[^=\n]*)?=(?P<value>[^\n]*)$", re.MULTILINE
)


def declared_heads(script_location: Path = MIGRATIONS_DIR) -> frozenset[str] | None:
    """The head revisions the revision files declare, read without importing Alembic.

    ``None`` when a file does not declare ``revision`` and ``down_revision`` as plain
    literals: then only Alembic can tell.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        files = sorted((script_location / "versions").glob("*.py"))
        for path in files:
            if path.name == "__init__.py":
                continue
            declared = _declared_revisions(path.read_text(encoding="utf-8"))
            if declared is None:
                return None
            revision, down_revisions = declared
            revisions.add(revision)
            parents.update(down_revisions)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    heads = revisions - parents
    return frozenset(heads) if heads else None


def _declared_revisions(source: str) -> tuple[str, tuple[str, ...]] | None:
    # A pattern rather than ast.parse: parsing every whole revision file costs more than
    # the rest of opening the store. Only unindented one-line assignments count; any other
    # spelling gives None, and Alembic decides.
    values: dict[str, object] = {}
    for match in _REVISION_ASSIGNMENT.finditer(source):
        name = match.group("name")
        if name in values:
            return None
        values[name] = ast.literal_eval(match.group("value").strip())
    revision, down = values.get("revision"), values.get("down_revision")
    if not isinstance(revision, str) or "down_revision" not in values:
        return None
    if down is None:
        return revision, ()
    if isinstance(down, str):
        return revision, (down,)
    if isinstance(down, tuple | list) and all(isinstance(item, str) for item in down):
        return revision, tuple(down)
    return None
