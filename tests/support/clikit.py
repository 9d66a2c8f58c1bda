"""``repolink`` as the CLI tests run it: through its real entry point in this process, or as
a process of its own."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from repolink import cli as cli_entry
from repolink.cli import _common
from repolink.cli import root as cli_root
from support.postgres import database_env

REPOLINK = [sys.executable, "-m", "repolink"]


def run_in_fresh_data_dir(
    tmp_path: Path, *args: str, input: str = ""
) -> subprocess.CompletedProcess[str]:
    """``repolink ARGS`` as a process of its own on ``tmp_path/data``, with no other
    ``REPOLINK_`` variable of this environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env["REPOLINK_DATA_DIR"] = str(tmp_path / "data")
    env.update(database_env(tmp_path / "data"))
    return subprocess.run(
        [*REPOLINK, *args], env=env, capture_output=True, text=True, input=input, timeout=60
    )


@dataclass
class CLI:
    """``repolink`` run in this process through its real entry point (``main``), or — with
    ``real_process`` — as a process of its own."""

    data_dir: Path
    home: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    columns: int = 200

    def __call__(
        self,
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        real_process: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            "REPOLINK_DATA_DIR": str(self.data_dir),
            **database_env(self.data_dir),
            # Loopback receivers, as in every test (tests/conftest.py).
            "REPOLINK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
            **(env or {}),
        }
        if real_process:
            return self._process(args, environment, input)
        with self.monkeypatch.context() as patch:
            for name in [name for name in os.environ if name.startswith("REPOLINK_")]:
                patch.delenv(name)
            for name, value in environment.items():
                patch.setenv(name, value)
            # The width a terminal of `columns` would give; the consoles read COLUMNS when they
            # print unless it was set when they were made, so that is undone for the call.
            patch.setenv("COLUMNS", str(self.columns))
            for console in (_common.console, _common.err_console):
                patch.setattr(console, "_width", None)
            patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(input or b"")))
            self.capsys.readouterr()
            with pytest.raises(SystemExit) as exited:
                cli_entry.main(list(args))
            out, err = self.capsys.readouterr()
        code = exited.value.code
        return subprocess.CompletedProcess(args, code if isinstance(code, int) else 1, out, err)

    def _process(
        self, args: tuple[str, ...], environment: dict[str, str], input: bytes | None
    ) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")}
        full.update(HOME=str(self.home), COLUMNS=str(self.columns), **environment)
        done = subprocess.run(
            [*REPOLINK, *args],
            env=full,
            input=input or b"",
            capture_output=True,
            timeout=180,
        )
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
        )

    def json(self, *args: str) -> Any:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def command_tree() -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) of every command and command group of ``repolink`` below the root,
    the groups that load lazily included: what a user can type, as click will parse it."""
    import typer

    cli_root.register_every_group()
    root = typer.main.get_command(cli_root.app)

    def walk(
        command: Any, path: tuple[str, ...], ctx: Any
    ) -> Iterator[tuple[tuple[str, ...], Any]]:
        if path:
            yield path, command
        for name in command.list_commands(ctx) if hasattr(command, "list_commands") else []:
            sub = command.get_command(ctx, name)
            yield from walk(sub, (*path, name), type(ctx)(sub, parent=ctx, info_name=name))

    yield from walk(root, (), type(root.make_context("repolink", [], resilient_parsing=True))(root))
