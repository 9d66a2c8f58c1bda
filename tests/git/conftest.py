"""Fixtures of the git/ tests: an isolated HOME and the hardened environment built on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from repolink.git.environment import hardened_env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return hardened_env(home)
