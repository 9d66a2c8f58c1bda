"""The one line a refused SSH command gets on stderr, from either SSH adapter."""

from __future__ import annotations

from repolink.cli.errors import cli_hint
from repolink.errors import RepolinkError


def refusal_line(error: RepolinkError) -> str:
    """``repolink: message — hint``: the hint in the words of the CLI, which is what the host's
    admin runs to change what the key may do."""
    line = f"repolink: {error.message}"
    hint = cli_hint(error)
    if hint:
        line += f" — {hint}"
    return " ".join(line.split()) + "\n"
