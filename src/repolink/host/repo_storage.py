"""Bare repositories of the built-in host on disk, and what a push changed in them.

A repository lives at ``<storage>/<id>.git``; the path is built from the database id alone,
never from a name a user typed. The storage is ``REPOLINK_HOST_STORAGE`` when set — the one
directory every host process behind one address mounts — else ``<data_dir>/host/repositories``
(:attr:`repolink.settings.Settings.resolved_host_storage`). Every git process starts through the
:class:`repolink.git.runner.GitRunner` the storage was built with.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from repolink.errors import GitError, HostStorageError
from repolink.git.environment import git_argv, hardened_env
from repolink.git.refs import pack_loose_refs, read_refs
from repolink.git.runner import LOCAL_GIT_TIMEOUT, GitRunner
from repolink.host.events import RefUpdate
from repolink.settings import Settings

log = logging.getLogger(__name__)

_REPOSITORY_ID = re.compile(r"[0-9a-f]{32}")

# Set on every hosted repository: check what is pushed, let partial clones work, and serve
# only what refs reach.
REPOSITORY_CONFIG = {
    "receive.fsckObjects": "true",
    "uploadpack.allowFilter": "true",
    "uploadpack.allowAnySHA1InWant": "false",
}
DEFAULT_BRANCH = "main"
STORAGE_SETTING = "REPOLINK_HOST_STORAGE"


class RepositoryStorage:
    """Where the host's bare repositories live, and the few git commands run on them."""

    def __init__(self, settings: Settings, *, runner: GitRunner) -> None:
        self._runner = runner
        self._settings = settings
        self._root = settings.resolved_host_storage
        # git's home is this process's own, beside its data, never on the shared storage.
        self._home = settings.resolved_data_dir / "host" / "git-home"

    @property
    def root(self) -> Path:
        return self._root

    def path_for(self, repository_id: str) -> Path:
        if not _REPOSITORY_ID.fullmatch(repository_id):
            # Ids come from our own database; anything else is a bug, not input to serve.
            raise ValueError("a hosted repository id is 32 lowercase hex digits")
        return self._root / f"{repository_id}.git"

    def git_env(self, *, git_protocol: str | None = None) -> dict[str, str]:
        """The hardened environment of every git process on these repositories.

        ``git_protocol`` is the client's ``GIT_PROTOCOL``, already checked by
        :func:`repolink.host.commands.accepted_git_protocol`.
        """
        self._home.mkdir(mode=0o700, parents=True, exist_ok=True)
        extra = {"GIT_PROTOCOL": git_protocol} if git_protocol is not None else None
        return hardened_env(self._home, extra=extra)

    def create(self, repository_id: str) -> Path:
        """``git init --bare`` a new repository for ``repository_id`` and configure it."""
        path = self.path_for(repository_id)
        usable_storage(self._settings)
        if path.exists():
            raise GitError(
                "repository_dir_exists",
                f"the directory for repository {repository_id} exists already",
                f"remove {path} if it is left over from a deleted repository",
            )
        env = self.git_env()
        self._git(
            ["init", "--bare", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(path)], env
        )
        for key, value in REPOSITORY_CONFIG.items():
            self._git(["config", "--file", str(path / "config"), key, value], env)
        return path

    def delete(self, repository_id: str) -> None:
        """Remove the repository's directory; a missing directory is not an error."""
        path = self.path_for(repository_id)
        if not path.exists():
            return
        # Rename first, so the path is gone at once even if removing the files takes long.
        doomed = path.with_name(f".deleting-{repository_id}-{uuid.uuid4().hex[:8]}")
        path.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def main_branch(self, repository_id: str) -> str | None:
        """The branch HEAD names when that branch exists, else ``None`` (an empty repository,
        a detached or missing HEAD). Only files are read: listings ask this of every
        repository they show, so no process may start here."""
        path = self.path_for(repository_id)
        try:
            head = (path / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None
        target = head.removeprefix("ref: ").strip()
        parts = target.split("/")
        # HEAD is written by git, never by a push; still, nothing outside refs/heads is read.
        if not head.startswith("ref: ") or parts[:2] != ["refs", "heads"] or len(parts) < 3:
            return None
        if any(part in ("", ".", "..") for part in parts):
            return None
        if (path / target).is_file() or _is_packed(path / "packed-refs", target):
            return target.removeprefix("refs/heads/")
        return None

    def last_ref_change(self, repository_id: str) -> datetime | None:
        """When a ref last changed (in a hosted repository only a push changes refs), from the
        times of its ref files and their directories (a deleted ref changes its directory's);
        ``None`` while it has no ref. Only files are read, as for :meth:`main_branch`."""
        path = self.path_for(repository_id)
        packed = path / "packed-refs"
        entries = [packed] if packed.is_file() else []
        try:
            entries += list((path / "refs").rglob("*"))
        except OSError:
            return None
        if not any(entry.is_file() for entry in entries):
            return None
        try:
            newest = max(entry.stat().st_mtime for entry in entries)
        except (OSError, ValueError):  # a ref moved while we looked: the push is not done
            return None
        return datetime.fromtimestamp(newest, UTC)

    def read_refs(self, path: Path) -> dict[str, str]:
        """Every ref of the repository at ``path`` and the object it points at: what a push
        announces. A name that is not UTF-8 is announced with replacement characters."""
        refs = read_refs(
            path,
            env=self.git_env(),
            runner=self._runner,
            peel=False,  # a push announces targets; peeling would only cost time
            what="git for-each-ref",
            code="host_git_failed",
        )
        return {_announced(name): ref.target for name, ref in refs.items()}

    def pack_refs(self, path: Path) -> None:
        """Pack the repository's refs when a push left many loose ones."""
        pack_loose_refs(path, env=self.git_env(), runner=self._runner)

    def _git(self, args: list[str], env: dict[str, str]) -> None:
        argv = git_argv(*args)
        self._runner.run(argv, env=env, timeout=LOCAL_GIT_TIMEOUT).check(
            f"git {args[0]}", code="host_git_failed"
        )


def usable_storage(settings: Settings) -> Path:
    """The hosted repositories' directory, ready to write in.

    The data directory's own is made when missing, as the rest of the data directory is. One
    that ``REPOLINK_HOST_STORAGE`` names never is: a missing directory there is most often a
    shared volume that is not mounted, and repositories made beneath the mount point would be
    this machine's alone — and hidden once the volume is mounted over them.
    """
    root = settings.resolved_host_storage
    if settings.host_storage is None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return root
    if not root.exists():
        raise _storage_error(
            "host_storage_missing",
            f"the host storage {root} does not exist",
            "mount the shared storage there (or create the directory), or point "
            f"{STORAGE_SETTING} at the directory holding the hosted repositories",
        )
    if not root.is_dir():
        raise _storage_error(
            "host_storage_not_a_directory",
            f"the host storage {root} is not a directory",
            f"point {STORAGE_SETTING} at the directory holding the hosted repositories",
        )
    if not os.access(root, os.W_OK | os.X_OK):
        raise _storage_error(
            "host_storage_not_writable",
            f"the host storage {root} is not writable by this user",
            "let the user running repolink write there (every host process needs to), or "
            f"point {STORAGE_SETTING} at a directory it may write",
        )
    return root


def _storage_error(code: str, message: str, hint: str) -> HostStorageError:
    return HostStorageError(code, message, hint)


def git_service_argv(program: str, path: Path) -> list[str]:
    """The command line serving ``program`` (``git-upload-pack`` …) on the bare repo ``path``."""
    service = program.removeprefix("git-")
    # --strict: serve exactly this directory, never a .git inside it.
    options = ["--strict"] if service == "upload-pack" else []
    return git_argv(service, *options, str(path))


def ref_updates(before: dict[str, str], after: dict[str, str]) -> list[RefUpdate]:
    """The refs that differ between two :meth:`RepositoryStorage.read_refs` snapshots."""
    updates = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            updates.append(RefUpdate(name, old, new))
    return updates


def _is_packed(packed_refs: Path, ref: str) -> bool:
    """Whether the ``packed-refs`` file lists ``ref`` (``<sha> <name>`` lines)."""
    try:
        with packed_refs.open(encoding="utf-8", errors="replace") as lines:
            return any(line.rstrip("\n").partition(" ")[2] == ref for line in lines)
    except OSError:
        return False


def _announced(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
