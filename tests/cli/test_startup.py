"""What a command imports before it does anything (issue 10 §2): a structural check, not a
timed one — bench/cli.py prints the times. Each case runs in a fresh interpreter, since this
one has imported everything already."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from repolink.cli.root import SUBCOMMANDS, SUMMARIES

HEAVY = (
    "sqlalchemy",
    "pydantic",
    "alembic",
    "cryptography",
    "bcrypt",
    "asyncssh",
    "fastapi",
    "uvicorn",
    "httpx",
    "pydantic_settings",
)

PROBE = """
import json, sys
from repolink import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
prefixes = ("repolink.", "typer._adapters", "asyncio") + HEAVY
print(json.dumps(sorted(name for name in sys.modules if name.startswith(prefixes))))
"""


def _loaded_after(*args: str, data_dir: Path) -> set[str]:
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")}
    environment["REPOLINK_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        name
        if name.startswith(("repolink.", "sqlalchemy.dialects.", "typer._"))
        else name.split(".")[0]
        for name in loaded
    }


def test_importing_the_cli_loads_no_heavy_dependency(tmp_path: Path) -> None:
    code = f"import sys, repolink.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("argv", [["--help"], ["--version"], []])
def test_the_root_help_and_version_import_no_group(argv: list[str], tmp_path: Path) -> None:
    loaded = _loaded_after(*argv, data_dir=tmp_path / "data")
    assert not loaded & set(HEAVY)
    groups = {target.split(":")[0] for target in SUBCOMMANDS.values()}
    assert not loaded & groups


def test_the_root_help_lists_every_group_with_its_summary(tmp_path: Path) -> None:
    environment = {**os.environ, "REPOLINK_DATA_DIR": str(tmp_path), "COLUMNS": "300"}
    done = subprocess.run(
        [sys.executable, "-m", "repolink", "--help"],
        env=environment,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    for name, summary in SUMMARIES.items():
        assert f" {name} " in done.stdout and summary in " ".join(done.stdout.split()), name


def test_every_group_has_a_summary_equal_to_its_own_help() -> None:
    assert set(SUMMARIES) == set(SUBCOMMANDS)
    for name, target in SUBCOMMANDS.items():
        module_name, attribute = target.split(":")
        group = getattr(importlib.import_module(module_name), attribute)
        assert group.info.help == SUMMARIES[name], name


def test_a_read_command_loads_neither_orm_nor_keys_nor_network_nor_web_stack(
    tmp_path: Path,
) -> None:
    first = _loaded_after("project", "list", data_dir=tmp_path / "data")  # creates, migrates
    assert "sqlalchemy" in first and "alembic" in first
    loaded = _loaded_after("project", "list", data_dir=tmp_path / "data")
    # It does read the store: on the embedded SQLite file, through stdlib sqlite3.
    assert {"repolink.store.plain", "repolink.platform.projects"} <= loaded
    assert not loaded & set(HEAVY), "a read command imports no SQLAlchemy, pydantic …"
    assert "repolink.cli.host" not in loaded and "repolink.hints" not in loaded
    assert not {name for name in loaded if name.startswith("repolink.store.models")}
    # Typer's pydantic coercion has nothing to do for a flag or a text (repolink.cli.coercion).
    assert "typer._adapters" not in loaded
    assert "asyncio" not in loaded  # only a server spawns processes the asyncio way


def test_the_fetch_service_on_sqlite_loads_no_other_dialect() -> None:
    """`repolink fetch` imports the fetch service and its index: on SQLite, PostgreSQL's
    dialect is imported only when its database is in use."""
    code = (
        "import sys, repolink.platform.fetch, repolink.platform.index; "
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "sqlalchemy.dialects.postgresql" not in done.stdout


def _indexed_by_hand(data_dir: Path, work: Path) -> None:
    """A connected project whose index and mirror hold a real two-commit history: written
    into the tables directly, as no SSH server is needed to read them."""
    from repolink.app import Repolink
    from repolink.git.mirrors import mirror_path
    from repolink.settings import Settings

    settings = Settings(data_dir=data_dir)
    with Repolink(settings) as app:
        app.projects.create_project("Alpha")
        app.connections.save("alpha", "git@example.com:team/repo.git")
    git = ["git", "-c", "user.name=Ann", "-c", "user.email=ann@example.com", "-C", str(work)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    for subject in ("first", "second"):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", subject], check=True)
    shas = subprocess.run(
        [*git, "rev-list", "main"], check=True, capture_output=True, text=True
    ).stdout.split()
    with sqlite3.connect(settings.resolved_data_dir / "repolink.db") as db:
        (connection_id,) = db.execute("SELECT id FROM repository_connections").fetchone()
        for seq, (sha, parents, subject) in enumerate(
            [(shas[1], "", "first"), (shas[0], shas[1], "second")], 1
        ):
            when = 1_700_000_000 + seq
            db.execute(
                "INSERT INTO commits VALUES (?, ?, ?, ?, 'Ann', 'ann@example.com', ?, ?, ?, 0)",
                (connection_id, sha, seq, parents, when, when, subject),
            )
        db.execute(
            "INSERT INTO refs VALUES (?, 'refs/heads/main', 'branch', ?, ?)",
            (connection_id, shas[0], shas[0]),
        )
    mirror = mirror_path(settings, connection_id)
    subprocess.run(["git", "clone", "-q", "--mirror", str(work), str(mirror)], check=True)


@pytest.mark.parametrize(
    "argv", [["alpha"], ["alpha", "--search", "SECOND"], ["alpha", "--ref", "main", "--limit", "1"]]
)
def test_listing_commits_loads_neither_orm_nor_pydantic(argv: list[str], tmp_path: Path) -> None:
    _indexed_by_hand(tmp_path / "data", tmp_path / "work")
    loaded = _loaded_after("commits", *argv, data_dir=tmp_path / "data")
    assert {"repolink.store.plain", "repolink.platform.commit_pages"} <= loaded
    assert not loaded & set(HEAVY), "commits imports no SQLAlchemy, pydantic …"
    assert not {name for name in loaded if name.startswith("repolink.store.models")}
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")}
    done = subprocess.run(
        [sys.executable, "-m", "repolink", "commits", *argv, "--json"],
        env={**environment, "REPOLINK_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    page = json.loads(done.stdout)
    assert [commit["subject"] for commit in page["commits"]] == (
        ["second"] if len(argv) > 1 else ["second", "first"]
    )
    assert page["commits"][0]["refs"] == ["refs/heads/main"]
    assert (page["next_cursor"] is not None) == ("--ref" in argv)
