"""The refs of a repository on local disk, as ``git for-each-ref`` lists them.

The one ref reader of repolink: a mirror reads its branches and tags with it (what the index
records), the built-in host reads every ref of a hosted repository before and after a push
(what a push announces). Each record names what the ref points at (``target``: a tag object for
an annotated tag) and the commit it leads to (``commit``: ``None`` for a ref to a tree or blob,
which has nothing to index).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repolink.git.environment import git_argv
from repolink.git.runner import LOCAL_GIT_TIMEOUT, GitRunner

log = logging.getLogger(__name__)

__all__ = ["OBJECT_ID", "GitRef", "read_refs"]

# A SHA-1 or SHA-256 object id, as git prints it.
OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

_FORMAT = "%(refname)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)"


@dataclass(frozen=True)
class GitRef:
    """One ref: its full name, the object it names, and the commit that object leads to."""

    name: str
    target: str
    commit: str | None


def read_refs(
    git_dir: Path,
    *,
    env: Mapping[str, str],
    runner: GitRunner,
    patterns: Sequence[str] = (),
    what: str = "reading the refs",
    code: str = "git_failed",
) -> dict[str, GitRef]:
    """The refs of the repository ``git_dir`` under ``patterns`` (every ref when empty), by
    full name; a failure raises :class:`~repolink.errors.GitError` ``code`` naming ``what``."""
    run = runner.run(
        git_argv("for-each-ref", f"--format={_FORMAT}", *patterns, git_dir=git_dir),
        env=env,
        timeout=LOCAL_GIT_TIMEOUT,
    ).check(what, code=code)
    refs: dict[str, GitRef] = {}
    for line in run.stdout.decode("utf-8", "surrogateescape").splitlines():
        ref = _parse_line(line)
        if ref is not None:
            refs[ref.name] = ref
    return refs


def _parse_line(line: str) -> GitRef | None:
    fields = line.split("\0")
    if len(fields) != 5:
        return None
    name, target, target_type, peeled, peeled_type = fields
    if not OBJECT_ID.fullmatch(target):
        return None
    commit: str | None = None
    if target_type == "commit":
        commit = target
    elif target_type == "tag" and peeled_type == "commit" and OBJECT_ID.fullmatch(peeled):
        commit = peeled
    return GitRef(name, target, commit)
