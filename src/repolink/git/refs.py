"""The refs of a repository on local disk, as ``git for-each-ref`` lists them.

The one ref reader of repolink: a mirror reads its branches and tags with it (what the index
records), the built-in host reads every ref of a hosted repository before and after a push
(what a push announces). Each record names what the ref points at (``target``: a tag object for
an annotated tag) and the commit it leads to (``commit``: ``None`` for a ref to a tree or blob,
which has nothing to index).

Time linear in the number of refs: ``for-each-ref`` asks for no ``%(*…)`` atom, because with
one it reads the whole object of every ref (a commit with a 10 MB message behind 100k refs is
a terabyte read); the annotated tags are then peeled by one ``git cat-file --batch-check``,
which parses each object once. A caller that needs only the targets passes ``peel=False``.

:func:`pack_loose_refs` keeps the loose ref files few after a push or a fetch wrote many.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repolink.git.environment import git_argv
from repolink.git.runner import LOCAL_GIT_TIMEOUT, GitRunner

log = logging.getLogger(__name__)

__all__ = ["LOOSE_REFS_TO_PACK", "OBJECT_ID", "GitRef", "pack_loose_refs", "read_refs"]

# A SHA-1 or SHA-256 object id, as git prints it.
OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

# More loose ref files than this and they are packed: 100k pushed tags left 393 MB of them,
# read one file each by every ref reader.
LOOSE_REFS_TO_PACK = 256

_FORMAT = "%(refname)%00%(objectname)%00%(objecttype)"
# What a peeled tag leads to: "<object id> <type>", or "<input> missing" for a broken tag.
_PEELED_FORMAT = "%(objectname) %(objecttype)"


@dataclass(frozen=True)
class GitRef:
    """One ref: its full name, the object it names, and the commit that object leads to
    (``None`` for a tree or blob, and for an annotated tag read with ``peel=False``)."""

    name: str
    target: str
    commit: str | None


def read_refs(
    git_dir: Path,
    *,
    env: Mapping[str, str],
    runner: GitRunner,
    patterns: Sequence[str] = (),
    peel: bool = True,
    what: str = "reading the refs",
    code: str = "git_failed",
) -> dict[str, GitRef]:
    """The refs of the repository ``git_dir`` under ``patterns`` (every ref when empty), by
    full name, annotated tags peeled (fully) to their commits unless ``peel`` is false; a
    failure raises :class:`~repolink.errors.GitError` ``code`` naming ``what``."""
    run = runner.run(
        git_argv("for-each-ref", f"--format={_FORMAT}", *patterns, git_dir=git_dir),
        env=env,
        timeout=LOCAL_GIT_TIMEOUT,
    ).check(what, code=code)
    refs: dict[str, GitRef] = {}
    tags: dict[str, str] = {}
    for line in run.stdout.decode("utf-8", "surrogateescape").splitlines():
        fields = line.split("\0")
        if len(fields) != 3 or not OBJECT_ID.fullmatch(fields[1]):
            continue
        name, target, target_type = fields
        refs[name] = GitRef(name, target, target if target_type == "commit" else None)
        if target_type == "tag":
            tags[name] = target
    if peel and tags:
        peeled = _peeled_commits(
            git_dir, set(tags.values()), env=env, runner=runner, what=what, code=code
        )
        for name, target in tags.items():
            refs[name] = GitRef(name, target, peeled.get(target))
    return refs


def _peeled_commits(
    git_dir: Path,
    tags: set[str],
    *,
    env: Mapping[str, str],
    runner: GitRunner,
    what: str,
    code: str,
) -> dict[str, str]:
    """The commit each tag object leads to, through nested tags; tags that lead to a tree, a
    blob or a missing object are left out."""
    ordered = sorted(tags)
    run = runner.run(
        # --buffer: one write per line to the pipe costs more than the peeling itself.
        git_argv("cat-file", "--buffer", f"--batch-check={_PEELED_FORMAT}", git_dir=git_dir),
        env=env,
        timeout=LOCAL_GIT_TIMEOUT,
        input="".join(f"{tag}^{{}}\n" for tag in ordered).encode("ascii"),
    ).check(what, code=code)
    commits: dict[str, str] = {}
    # cat-file answers one line per input line, in order.
    for tag, line in zip(ordered, run.stdout.decode("ascii", "replace").splitlines(), strict=False):
        peeled, _, peeled_type = line.partition(" ")
        if peeled_type == "commit" and OBJECT_ID.fullmatch(peeled):
            commits[tag] = peeled
    return commits


def pack_loose_refs(
    git_dir: Path,
    *,
    env: Mapping[str, str],
    runner: GitRunner,
    threshold: int = LOOSE_REFS_TO_PACK,
) -> bool:
    """``git pack-refs --all`` when ``git_dir`` holds more than ``threshold`` loose refs;
    whether it packed. A failure is logged, never raised: the refs are still all there."""
    if not _more_loose_refs_than(git_dir / "refs", threshold):
        return False
    run = runner.run(
        git_argv("pack-refs", "--all", git_dir=git_dir), env=env, timeout=LOCAL_GIT_TIMEOUT
    )
    if not run.ok:
        log.warning("packing the refs of %s failed (exit status %d)", git_dir, run.returncode)
        return False
    return True


def _more_loose_refs_than(refs: Path, threshold: int) -> bool:
    # Stops counting at the threshold: a repository with few loose refs costs a few stats.
    seen = 0
    for _directory, _subdirectories, files in os.walk(refs):
        seen += len(files)
        if seen > threshold:
            return True
    return False
