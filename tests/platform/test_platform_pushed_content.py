"""What a pushed repository may hold and the platform still keeps small (issue 10 §3.8): huge
commit texts are capped in the index, many new refs are packed in the mirror."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from repolink.git.mirrors import mirror_path
from repolink.git.refs import LOOSE_REFS_TO_PACK
from repolink.platform.index import MAX_PERSON_CHARS, MAX_SUBJECT_CHARS
from support.platformkit import HostedRepos, Platform, granted_key


def _loose_refs(git_dir: Path) -> list[Path]:
    return [path for path in (git_dir / "refs").rglob("*") if path.is_file()]


def _push_tags(hosted: HostedRepos, count: int, prefix: str) -> None:
    repo = hosted.app
    head = repo.git("rev-parse", "HEAD")
    updates = "".join(f"create refs/tags/{prefix}-{n:04d} {head}\n" for n in range(count))
    subprocess.run(
        ["git", "-C", str(repo.source), "update-ref", "--stdin"],
        input=updates,
        text=True,
        check=True,
    )
    repo.push(f"refs/tags/{prefix}-*:refs/tags/{prefix}-*")


def test_huge_subject_and_author_are_capped_in_the_index(
    platform: Platform, hosted: HostedRepos
) -> None:
    repo = hosted.app
    subject = "s" * (MAX_SUBJECT_CHARS * 5)
    name, email = "n" * 1000, "e" * 1000 + "@example.invalid"
    tree = repo.git("rev-parse", "HEAD^{tree}")
    authored = {**os.environ, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}
    sha = subprocess.run(
        ["git", "-C", str(repo.source), "commit-tree", tree, "-p", "HEAD", "-m", subject],
        env=authored,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    repo.push(f"{sha}:refs/heads/huge-text")
    platform.connect("huge-text", repo.url(), granted_key(hosted.host, "app", "huge-text"))

    page = platform.app.commits.list_commits("huge-text", ref="refs/heads/huge-text", limit=1)
    (commit,) = page.commits
    assert commit.sha == sha
    assert len(commit.subject) == MAX_SUBJECT_CHARS
    assert commit.subject.startswith("sss") and commit.subject.endswith("…")
    assert len(commit.author_name) == len(commit.author_email) == MAX_PERSON_CHARS


def test_a_refresh_bringing_many_refs_leaves_them_packed(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.connect("many-refs", hosted.app.url(), granted_key(hosted.host, "app", "many-refs"))
    _push_tags(hosted, LOOSE_REFS_TO_PACK + 50, "bulk")

    platform.fetch("many-refs")

    mirror = mirror_path(
        platform.settings, platform.app.connections.connection_info("many-refs").id
    )
    assert len(_loose_refs(mirror)) <= LOOSE_REFS_TO_PACK
    assert "refs/tags/bulk-0299" in (mirror / "packed-refs").read_text()
    names = {ref.name for ref in platform.app.commits.list_refs("many-refs")}
    assert {f"refs/tags/bulk-{n:04d}" for n in range(LOOSE_REFS_TO_PACK + 50)} <= names
