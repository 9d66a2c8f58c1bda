"""What a command imports before it does anything (issue 10 §2): a structural check, not a
timed one — bench/cli.py prints the times. Each case runs in a fresh interpreter, since this
one has imported everything already."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repolink.cli import SUBCOMMANDS, SUMMARIES

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
