"""Hosted repositories on disk: the main branch a listing shows, read from files alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from repolink.host.service import HostService
from support.hostkit import make_source_repository


def git_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }


def git(env: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], env=env, check=True, capture_output=True)


def test_main_branch_is_known_once_the_branch_head_names_exists(
    host_service: HostService, tmp_path: Path
) -> None:
    info = host_service.create_repository("team", "app")
    bare = host_service.repository_path(info)
    assert host_service.main_branch(info) is None  # empty: HEAD names a branch not yet pushed

    env = git_env(tmp_path / "home")
    make_source_repository(tmp_path / "src", env)
    git(env, "-C", str(tmp_path / "src"), "push", "-q", str(bare), "main:refs/heads/feature")
    assert host_service.main_branch(info) is None  # a branch, but not the one HEAD names

    git(env, "-C", str(tmp_path / "src"), "push", "-q", str(bare), "main")
    assert host_service.main_branch(info) == "main"

    git(env, "--git-dir", str(bare), "pack-refs", "--all", "--prune")
    assert not (bare / "refs" / "heads" / "main").exists()
    assert host_service.main_branch(info) == "main"  # found in packed-refs

    git(env, "--git-dir", str(bare), "symbolic-ref", "HEAD", "refs/heads/feature")
    assert host_service.main_branch(info) == "feature"


def test_main_branch_of_a_detached_or_odd_head_is_unknown(host_service: HostService) -> None:
    info = host_service.create_repository("team", "app")
    head = host_service.repository_path(info) / "HEAD"
    (head.parent / "refs" / "heads" / "main").write_text("0" * 40 + "\n")
    assert host_service.main_branch(info) == "main"
    for text in (
        "0" * 40 + "\n",  # detached
        "ref: refs/tags/main\n",  # not a branch
        "ref: refs/heads/../../config\n",  # nothing outside refs/heads is read
        "ref: refs/heads/\n",
    ):
        head.write_text(text)
        assert host_service.main_branch(info) is None, text
    head.unlink()
    assert host_service.main_branch(info) is None
