"""read_refs(): the one ref reader, on a real repository made by git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repolink.errors import GitError
from repolink.git.environment import hardened_env
from repolink.git.refs import LOOSE_REFS_TO_PACK, pack_loose_refs, read_refs
from support.manyrefs import build_many_refs_repository
from support.recording import RecordingRunner

# The reader before issue 10 §3.7: correct, but `%(*…)` made git read every ref's whole object.
_OLD_FORMAT = "%(refname)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)"


def _old_reader(git_dir: Path) -> dict[str, tuple[str, str | None]]:
    listed = subprocess.run(
        ["git", f"--git-dir={git_dir}", "for-each-ref", f"--format={_OLD_FORMAT}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    refs: dict[str, tuple[str, str | None]] = {}
    for line in listed.splitlines():
        name, target, kind, peeled, peeled_kind = line.split("\0")
        commit = target if kind == "commit" else peeled if peeled_kind == "commit" else None
        refs[name] = (target, commit)
    return refs


def _as_pairs(git_dir: Path, tmp_path: Path) -> dict[str, tuple[str, str | None]]:
    refs = read_refs(git_dir, env=hardened_env(tmp_path), runner=RecordingRunner())
    return {name: (ref.target, ref.commit) for name, ref in refs.items()}


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
    # for-each-ref with no pattern after its format (every ref), then one cat-file peeling.
    listing, peeling = recording.runs()
    assert listing.argv[-1].startswith("--format=")
    assert "cat-file" in peeling.argv


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


def test_same_answer_as_the_reader_before(repo: Path, tmp_path: Path) -> None:
    _git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    _git(repo, "tag", "-a", "v2", "-m", "second")
    _git(repo, "tag", "light")
    _git(repo, "branch", "side", "HEAD~1")
    _git(repo, "tag", "-a", "blob-tag", "-m", "a blob", _git(repo, "hash-object", "-w", "--stdin"))
    assert _as_pairs(repo / ".git", tmp_path) == _old_reader(repo / ".git")


def test_a_tag_of_a_tag_leads_to_its_commit(repo: Path, tmp_path: Path) -> None:
    _git(repo, "tag", "-a", "outer", "-m", "tags v1", "v1")
    refs = read_refs(repo / ".git", env=hardened_env(tmp_path), runner=RecordingRunner())
    assert refs["refs/tags/outer"].target == _git(repo, "rev-parse", "outer")
    assert refs["refs/tags/outer"].commit == _git(repo, "rev-parse", "HEAD")


def test_without_peeling_one_process_and_no_commit_for_a_tag(repo: Path, tmp_path: Path) -> None:
    recording = RecordingRunner()
    refs = read_refs(repo / ".git", env=hardened_env(tmp_path), runner=recording, peel=False)
    assert refs["refs/tags/v1"].target == _git(repo, "rev-parse", "v1")
    assert refs["refs/tags/v1"].commit is None
    assert refs["refs/heads/main"].commit == _git(repo, "rev-parse", "HEAD")
    assert len(recording.runs()) == 1


def test_many_refs_to_a_huge_commit_are_read_without_reading_it_per_ref(tmp_path: Path) -> None:
    # issue 10 §3.7: a 10 MB message behind 100k refs made every fetch time out; here smaller.
    nasty = build_many_refs_repository(
        tmp_path / "nasty.git", message_bytes=1_000_000, annotated=1000, plain=4000
    )
    recording = RecordingRunner()
    refs = read_refs(nasty.path, env=hardened_env(tmp_path), runner=recording)

    assert len(refs) == 5001
    assert {ref.commit for ref in refs.values()} == {nasty.commit}
    assert all(refs[name].target == oid for name, oid in nasty.tag_objects.items())
    # What keeps it linear: no `%(*…)` atom (git reads the whole object of every ref for one),
    # and the 1000 tags peeled by a single cat-file whatever their number.
    listing, peeling = recording.runs()
    assert "%(*" not in " ".join(listing.argv)
    assert "cat-file" in peeling.argv


def _loose_tags(repo: Path, count: int) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    updates = "".join(f"create refs/tags/loose-{n:04d} {head}\n" for n in range(count))
    subprocess.run(
        ["git", "-C", str(repo), "update-ref", "--stdin"], input=updates, text=True, check=True
    )


def test_many_loose_refs_are_packed_and_still_read(repo: Path, tmp_path: Path) -> None:
    _loose_tags(repo, LOOSE_REFS_TO_PACK + 1)
    before = _as_pairs(repo / ".git", tmp_path)

    packed = pack_loose_refs(repo / ".git", env=hardened_env(tmp_path), runner=RecordingRunner())

    assert packed
    assert not any((repo / ".git" / "refs" / "tags").iterdir())
    assert _as_pairs(repo / ".git", tmp_path) == before


def test_a_few_loose_refs_start_no_git(repo: Path, tmp_path: Path) -> None:
    _loose_tags(repo, LOOSE_REFS_TO_PACK - 10)
    recording = RecordingRunner()

    assert not pack_loose_refs(repo / ".git", env=hardened_env(tmp_path), runner=recording)
    assert recording.runs() == []
