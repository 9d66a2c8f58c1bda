"""HardenedRunner.run notices a child's exit through a pidfd, and by polling where there is none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from repolink.git.environment import hardened_env
from repolink.git.runner import HardenedRunner

run = HardenedRunner().run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return hardened_env(home)


@pytest.fixture(params=["pidfd", "polling"])
def wait_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "polling":

        def unavailable(pid: int, flags: int = 0) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", unavailable, raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("os.pidfd_open needs Linux 5.3+")
    return str(request.param)


@pytest.mark.timeout(30)
def test_exit_status_and_output_after_a_normal_exit(env: dict[str, str], wait_mode: str) -> None:
    result = run(["sh", "-c", "echo out; echo err >&2; exit 3"], env=env, timeout=20)

    assert not result.timed_out
    assert result.returncode == 3
    assert result.stdout == b"out\n"
    assert result.stderr == "err\n"


@pytest.mark.timeout(30)
def test_a_child_past_its_limit_is_stopped_and_reported(
    env: dict[str, str], wait_mode: str
) -> None:
    result = run(["sleep", "60"], env=env, timeout=0.5, kill_grace=0.5)

    assert result.timed_out
    assert result.returncode < 0
