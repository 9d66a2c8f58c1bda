"""A cancellable run: setting its event stops the whole process group and raises
``cancelled``; a cancelled runner starts nothing more; everything else goes to the inner one."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from repolink.errors import GitError
from repolink.git.cancel import CANCELLED, CancellableRunner
from repolink.git.runner import HardenedRunner

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rpartition(")")[2].split()[:1] != ["Z"]


def test_setting_the_event_stops_the_process_group_and_raises_cancelled(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    cancel = threading.Event()
    runner = CancellableRunner(HardenedRunner(), cancel)

    def cancel_once_started(line: str) -> None:
        if line == "started":
            cancel.set()

    with pytest.raises(GitError) as stopped:
        runner.run(
            # A child of the child too: the whole group must go.
            ["sh", "-c", f"sleep 600 & echo $$ $! > {pids}; echo started >&2; wait"],
            env=ENV,
            timeout=600,
            on_stderr_line=cancel_once_started,
        )

    assert stopped.value.code == CANCELLED
    shell, sleeper = (int(pid) for pid in pids.read_text().split())
    assert not _alive(shell) and not _alive(sleeper)


def test_a_cancelled_runner_starts_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    marker = tmp_path / "ran"
    with pytest.raises(GitError) as refused:
        CancellableRunner(HardenedRunner(), cancel).run(
            ["sh", "-c", f"touch {marker}"], env=ENV, timeout=30
        )
    assert refused.value.code == CANCELLED
    assert not marker.exists()


def test_an_uncancelled_run_is_the_inner_runners() -> None:
    runner = CancellableRunner(HardenedRunner(), threading.Event())
    done = runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"], env=ENV, timeout=30)
    assert (done.returncode, done.stdout, done.stderr.strip()) == (3, b"out\n", "err")
    assert not done.timed_out
