"""What the SSH side tells the webhook side after a push."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RefUpdate:
    """One ref changed by a push; ``old``/``new`` are ``None`` for a created/deleted ref."""

    name: str
    old: str | None
    new: str | None
