"""What every CLI command shares: settings, consoles, JSON output."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from repolink.settings import Settings

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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
