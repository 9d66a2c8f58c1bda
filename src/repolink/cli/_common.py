"""What every CLI command shares: settings, consoles, JSON output."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from repolink.errors import ValidationError
from repolink.keys.repair import MAX_INPUT_CHARS
from repolink.settings import Settings

# No emoji codes: fingerprints hold ":ab:" and ":cd:", which Rich would draw as emoji.
console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def load_settings() -> Settings:
    """Settings from the environment; commands never read the environment themselves."""
    return Settings()


def print_json(data: Any) -> None:
    """One JSON document on stdout, unstyled, so it can be piped."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


class SingleCommandGroup(TyperGroup):
    """A group that is one command (every top-level name is an app for ``add_typer``):
    options may follow the arguments, and the usage line offers no subcommand."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return [piece for piece in pieces if piece != getattr(self, "subcommand_metavar", None)]


def single_command_app(help: str) -> typer.Typer:
    """A Typer app holding one command, registered by its callback (``repolink fetch P``)."""
    return typer.Typer(
        cls=SingleCommandGroup, help=help, context_settings={"allow_interspersed_args": True}
    )


def read_key_input(path: str) -> bytes:
    """A key from a file, or from stdin for ``-``; read no further than the parsers accept."""
    limit = MAX_INPUT_CHARS + 1  # one more than accepted, so the parser can say "too large"
    if path == "-":
        return sys.stdin.buffer.read(limit)
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise ValidationError(
            "key_file_unreadable",
            f"cannot read the key file {path}: {os.strerror(exc.errno) if exc.errno else 'error'}",
            "check the path given to --key",
        ) from None


def read_passphrase_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(
            "passphrase_file_unreadable",
            f"cannot read the passphrase file {path}: "
            f"{os.strerror(exc.errno) if exc.errno else 'error'}",
            "check the path given to --passphrase-file",
        ) from None
    # Editors end files with a newline; it is not part of the passphrase.
    return raw.removesuffix(b"\n").removesuffix(b"\r")


def format_when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"
