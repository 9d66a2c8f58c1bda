"""JSON on stdout, as every ``--json`` command prints it; importable without Rich or Typer."""

from __future__ import annotations

import json
from typing import Any


def print_json(data: Any) -> None:
    """One JSON document on stdout, unstyled, so it can be piped."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
