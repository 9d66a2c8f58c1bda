"""What every CLI command shares: settings, consoles, JSON output."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from repolink.settings import Settings

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def load_settings() -> Settings:
    """Settings from the environment; commands never read the environment themselves."""
    return Settings()


def print_json(data: Any) -> None:
    """One JSON document on stdout, unstyled, so it can be piped."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
