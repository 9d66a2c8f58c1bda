"""The confirmation every destructive command asks for, in one place.

On a terminal the command asks; ``--yes`` answers for it. Without a terminal nobody can answer,
so a script that forgot ``--yes`` is told so and exits 2 (its input is incomplete) with nothing
deleted — it used to print ``aborted`` and exit 130, as if someone had pressed Ctrl-C. A
question answered "no" exits 1: the operation was asked for and did not happen.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from repolink.errors import RepolinkError, ValidationError

YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal)."),
]


def confirm_or_stop(action: str, *, yes: bool) -> None:
    """Return when ``action`` ("delete project web and its mirror …") may go ahead: ``yes``
    was given, or the person at the terminal said so. Raise ``confirmation_required`` without
    a terminal to ask on, ``confirmation_declined`` when the answer is no."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ValidationError(
            "confirmation_required",
            f"{action}: this needs a confirmation and there is no terminal to ask; "
            "nothing was changed",
            "pass --yes to confirm",
        )
    if not typer.confirm(f"{action}?", default=False):
        raise RepolinkError(
            "confirmation_declined",
            f"{action}: not confirmed; nothing was changed",
            "answer y to go ahead, or pass --yes",
        )
