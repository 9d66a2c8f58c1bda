"""The one line a refused SSH command gets on stderr, from either SSH adapter."""

from __future__ import annotations

from repolink.errors import RepolinkError
from repolink.hints import command_hint


def refusal_line(error: RepolinkError) -> str:
    """``repolink: message — hint``: the hint in the words of the CLI, which is what the host's
    admin runs to change what the key may do."""
    line = f"repolink: {error.message}"
    hint = command_hint(error)
    if hint:
        line += f" — {hint}"
    return " ".join(line.split()) + "\n"
