"""read_refs(): the one ref reader, on a real repository made by git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repolink.errors import GitError
from repolink.git.environment import hardened_env
from repolink.git.refs import read_refs
from support.recording import RecordingRunner


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    _git(path, "commit", "-q", "--allow-empty", "-m", "one")
    _git(path, "tag", "-a", "v1", "-m", "release")
    _git(path, "tag", "tree-tag", "HEAD^{tree}")
    _git(path, "update-ref", "refs/notes/extra", "HEAD")
    return path


def test_every_ref_with_its_target_and_commit(repo: Path, tmp_path: Path) -> None:
    recording = RecordingRunner()
    refs = read_refs(repo / ".git", env=hardened_env(tmp_path), runner=recording)

    head = _git(repo, "rev-parse", "HEAD")
    assert set(refs) == {
        "refs/heads/main",
        "refs/tags/v1",
        "refs/tags/tree-tag",
        "refs/notes/extra",
    }
    assert (refs["refs/heads/main"].target, refs["refs/heads/main"].commit) == (head, head)
    # An annotated tag names its tag object and leads to its commit; a tree leads to none.
    assert refs["refs/tags/v1"].target == _git(repo, "rev-parse", "v1")
    assert refs["refs/tags/v1"].target != head and refs["refs/tags/v1"].commit == head
    assert refs["refs/tags/tree-tag"].commit is None
    # One git process, and no pattern after its format: every ref.
    (run,) = recording.runs()
    assert run.argv[-1].startswith("--format=")


def test_patterns_limit_what_is_listed(repo: Path, tmp_path: Path) -> None:
    refs = read_refs(
        repo / ".git",
        env=hardened_env(tmp_path),
        runner=RecordingRunner(),
        patterns=("refs/heads", "refs/tags"),
    )
    assert set(refs) == {"refs/heads/main", "refs/tags/v1", "refs/tags/tree-tag"}


def test_a_failure_names_what_was_read(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        read_refs(
            tmp_path / "missing.git",
            env=hardened_env(tmp_path),
            runner=RecordingRunner(),
            what="reading the refs of a test",
            code="test_failed",
        )
    assert caught.value.code == "test_failed"
    assert caught.value.message.startswith("reading the refs of a test failed")
