"""The one line a refused SSH command gets on stderr, from either SSH adapter."""

from __future__ import annotations

from repolink.errors import RepolinkError


def refusal_line(error: RepolinkError) -> str:
    """``repolink: message — hint``: the hint in the words of the CLI, which is what the host's
    admin runs to change what the key may do."""
    # Imported here: sshd starts the OpenSSH-mode shell for every command, and only a refused
    # one needs the wording table.
    from repolink.hints import command_hint

    line = f"repolink: {error.message}"
    hint = command_hint(error)
    if hint:
        line += f" — {hint}"
    return " ".join(line.split()) + "\n"
