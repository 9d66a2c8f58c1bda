"""The mirror's first fetch (a bare clone into its path) and its repair after a killed one."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from repolink.git import mirrors
from support.platformkit import HostedRepos, Platform, granted_key
from support.recording import RecordedRun, RecordingRunner


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def test_a_first_fetch_clones_branches_and_tags_and_keeps_no_url(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect("clone", hosted.app.url(), granted_key(hosted.host, "app", "cl"))
    assert outcome.error is None, outcome.error
    path = mirrors.mirror_path(platform.settings, outcome.connection.id)

    refs = mirrors.read_mirror_refs(
        path, env=mirrors.local_env(platform.settings), runner=platform.runner
    )

    assert set(refs) == {
        "refs/heads/main",
        "refs/heads/feature",
        "refs/tags/v1.0",
        "refs/tags/v1.1",
    }
    assert refs["refs/tags/v1.1"].commit == hosted.app.git("rev-parse", "v1.1^{commit}")
    assert _git(f"--git-dir={path}", "config", "--bool", "core.bare").strip() == "true"
    assert path.stat().st_mode & 0o777 == 0o700
    # The URL lives in the database only: the mirror's config names no remote.
    config = (path / "config").read_text()
    assert "[remote" not in config and "127.0.0.1" not in config
    # The next fetch into it is a refresh.
    hosted.app.commit("after the clone")
    assert platform.fetch("clone").new_commits == 1


def test_a_mirror_left_without_refs_is_cloned_again(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect("again", hosted.other.url(), granted_key(hosted.host, "other", "a"))
    path = mirrors.mirror_path(platform.settings, outcome.connection.id)
    # What a clone killed before it wrote any ref leaves: a repository with objects, no refs.
    subprocess.run(["rm", "-rf", str(path)], check=True)
    _git("init", "--quiet", "--bare", str(path))
    (path / "objects" / "pack" / "tmp_pack_half").write_bytes(b"PACK half received")
    (path / "junk-from-the-killed-clone").write_text("x")

    result = platform.fetch("again")

    assert not result.skipped
    assert not (path / "junk-from-the-killed-clone").exists()
    assert set(
        mirrors.read_mirror_refs(
            path, env=mirrors.local_env(platform.settings), runner=platform.runner
        )
    ) == {"refs/heads/main"}
    assert platform.app.connections.connection_info("again").state == "ok"


@pytest.mark.parametrize("destination", ["mirror", "scout"])
def test_prepare_stops_a_clone_whose_repolink_process_died(
    platform: Platform, destination: str
) -> None:
    path = mirrors.mirror_path(platform.settings, "0" * 32)
    target = path if destination == "mirror" else mirrors.scout_path(path)
    # Stands in for `git clone … -- URL <mirror>` (or the scout's clone beside it) left running
    # by a killed repolink: the same argv words, in a session of its own as the runner starts git.
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "clone", "--", "URL", str(target)],
        start_new_session=True,
    )
    try:
        # Popen returns once the child's exec began, possibly before the kernel shows its new
        # argv in /proc; a real orphan has been running for a while.
        cmdline = Path(f"/proc/{orphan.pid}/cmdline")
        deadline = time.monotonic() + 10
        while b"clone" not in cmdline.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        with mirrors.locked(path, timeout=10) as lock:
            # The mark of a fetch that never reached its end.
            path.with_name(path.name + mirrors.FETCHING_SUFFIX).write_text("4242\n")

            repaired = mirrors.prepare(path, lock)

        assert repaired == [f"stopped process {orphan.pid}"]
        deadline = time.monotonic() + 10
        while orphan.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert orphan.returncode is not None and orphan.returncode < 0
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_prepare_removes_the_partial_clone_of_a_killed_fetchs_scout(platform: Platform) -> None:
    path = mirrors.mirror_path(platform.settings, "1" * 32)
    scout = mirrors.scout_path(path)
    (scout / "objects").mkdir(parents=True)
    (scout / "HEAD").write_text("ref: refs/heads/main\n")

    with mirrors.locked(path, timeout=10) as lock:
        repaired = mirrors.prepare(path, lock)

    assert repaired == [f"removed {scout.name}"]
    assert not scout.exists()
    assert scout.parent == path.parent and scout.name == f"{path.name}.scout"


# -- reading the ref targets without git ------------------------------------------------------


def _git_runs() -> tuple[RecordingRunner, list[Sequence[str]]]:
    """A runner for the mirror module, and every git command it runs through it (the run
    itself is real)."""
    runs: list[Sequence[str]] = []

    def spy(run: RecordedRun) -> None:
        runs.append(run.argv)

    return RecordingRunner(before_run=spy), runs


def _targets_as_git_lists_them(path: Path, platform: Platform) -> dict[str, str]:
    refs = mirrors.read_mirror_refs(
        path, env=mirrors.local_env(platform.settings), runner=platform.runner
    )
    return {name: ref.target for name, ref in refs.items()}


def test_ref_targets_are_read_from_the_ref_files_as_git_reads_them(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect("targets", hosted.app.url(), granted_key(hosted.host, "app", "t"))
    path = mirrors.mirror_path(platform.settings, outcome.connection.id)
    hosted.app.commit("after the clone, for a loose ref")
    assert platform.fetch("targets").new_commits == 1
    assert (path / "packed-refs").is_file() and (path / "refs" / "heads" / "main").is_file()
    env = mirrors.local_env(platform.settings)
    recording, runs = _git_runs()

    def check() -> dict[str, str]:
        runs.clear()
        targets = mirrors.read_ref_targets(path, env=env, runner=recording)
        assert runs == []  # plain ref files: no git process
        assert targets == _targets_as_git_lists_them(path, platform)
        return targets

    # After a clone and a fetch: packed refs, and what the fetch wrote.
    targets = check()
    assert {"refs/heads/main", "refs/heads/feature", "refs/tags/v1.0", "refs/tags/v1.1"} <= set(
        targets
    )
    # The annotated tag names its tag object, not the commit.
    assert targets["refs/tags/v1.1"] != hosted.app.git("rev-parse", "v1.1^{commit}")

    # Everything packed.
    _git(f"--git-dir={path}", "pack-refs", "--all")
    assert not [p for p in (path / "refs" / "heads").rglob("*") if p.is_file()]
    assert check() == targets

    # A loose ref wins over its packed entry; a leftover lock file is no ref.
    feature = targets["refs/heads/feature"]
    _git(f"--git-dir={path}", "update-ref", "refs/heads/main", feature)
    assert (path / "refs" / "heads" / "main").is_file()
    (path / "refs" / "heads" / "feature.lock").write_text(targets["refs/heads/main"] + "\n")
    moved = check()
    assert moved["refs/heads/main"] == feature
    assert moved == {**targets, "refs/heads/main": feature}


def test_a_symbolic_ref_is_listed_by_git(platform: Platform, hosted: HostedRepos) -> None:
    outcome = platform.connect("symref", hosted.other.url(), granted_key(hosted.host, "other", "s"))
    path = mirrors.mirror_path(platform.settings, outcome.connection.id)
    (path / "refs" / "heads" / "alias").write_text("ref: refs/heads/main\n")
    recording, runs = _git_runs()

    targets = mirrors.read_ref_targets(
        path, env=mirrors.local_env(platform.settings), runner=recording
    )

    assert len(runs) == 1  # fell back to git for-each-ref
    assert targets == _targets_as_git_lists_them(path, platform)
    assert targets["refs/heads/alias"] == targets["refs/heads/main"]


def test_a_missing_mirror_has_no_ref_targets(platform: Platform) -> None:
    path = mirrors.mirror_path(platform.settings, "f" * 32)

    assert (
        mirrors.read_ref_targets(
            path, env=mirrors.local_env(platform.settings), runner=platform.runner
        )
        == {}
    )
