"""A checkout's git work: the tree of one commit written into a directory, then its submodules
fetched over SSH and written the same way, level by level.

A tree is read from a repository with ``git --git-dir=REPO --work-tree=DEST`` and a throw-away
index (``GIT_INDEX_FILE``): ``read-tree COMMIT``, then ``checkout-index --all`` — git's own
checkout code, which refuses unsafe paths and runs no hook (see :mod:`repolink.platform.checkout`
for why this route).

Each submodule commit is fetched into a temporary bare repository (one per URL) with the key
:func:`repolink.platform.key_rules.choose_key` picks for its URL, following architecture.md#security
exactly as a fetch does (:func:`repolink.git.remote.open_remote`: hardened environment, a
per-run known_hosts file, the key in a 0600 file removed afterwards), with
``transfer.fsckObjects`` on, no tags and no recursion by git itself. It asks for that one
commit (``--depth=1``); a server that hands out only what its refs advertise gets a fetch of
its branches and tags instead. Keys are read from the store in a short transaction before the
fetch, and their use recorded in another after it: no transaction is open while git runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from repolink import knownhosts
from repolink.errors import KeyFormatError, RepolinkError, SubmoduleFetchError
from repolink.git.diagnosis import invalid_private_key
from repolink.git.environment import FSCK_ON_RECEIVE, git_argv
from repolink.git.remote import open_remote
from repolink.git.runner import CompletedRun
from repolink.keys import PrivateKey
from repolink.knownhosts import TrustedHostKey
from repolink.platform.checkout_dest import shown_path, submodule_dir
from repolink.platform.key_rules import ChosenKey, choose_key
from repolink.platform.submodule_plan import Workspace
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.key_records import load_private_key, mark_used
from repolink.store.types import Clock
from repolink.urls import SSHURL
from repolink.vault import VaultLoader

log = logging.getLogger(__name__)

# git's words when a server will not hand out a commit that no ref advertises.
_UNADVERTISED = (
    "not our ref",
    "unadvertised object",
    "couldn't find remote ref",
    "no such remote ref",
)


@dataclass(frozen=True)
class SubmoduleCheckout:
    """One submodule written: where (relative to DEST), what, from where, with which key."""

    path: str
    name: str
    url: str
    commit: str
    depth: int
    key: ChosenKey

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "name": self.name,
            "url": self.url,
            "commit": self.commit,
            "depth": self.depth,
            "key": self.key.as_dict(),
        }


@dataclass(frozen=True)
class _Access:
    """What reaching one URL takes: the key chosen for it and the host keys to trust."""

    chosen: ChosenKey
    key: PrivateKey = field(repr=False)
    trusted: list[TrustedHostKey]


class TreeWriter:
    """One checkout's git work; temporary repositories and index files live in ``work``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        vault: VaultLoader,
        clock: Clock,
        *,
        project: str,
        work: Workspace,
        max_depth: int,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._clock = clock
        self._project = project
        self._work = work
        self._max_depth = max_depth
        self._repos: dict[SSHURL, Path] = {}

    def write_tree(self, git_dir: Path, commit: str, target: Path) -> None:
        """The tree of ``commit`` into the empty directory ``target``."""
        index = self._work.fresh("index")
        env = {**self._work.env, "GIT_INDEX_FILE": str(index)}
        try:
            for args in (("read-tree", commit), ("checkout-index", "--all")):
                self._work.git(
                    git_argv(f"--work-tree={target}", *args, git_dir=git_dir),
                    env=env,
                    what=f"writing the tree of {commit}",
                )
        finally:
            index.unlink(missing_ok=True)

    def submodules(
        self, git_dir: Path, commit: str, target: Path, base: SSHURL, *, prefix: str, depth: int
    ) -> list[SubmoduleCheckout]:
        """Every submodule of ``commit`` (whose tree is in ``target``), recursively."""
        plans = self._work.plan_submodules(
            git_dir, commit, base, prefix=prefix, depth=depth, max_depth=self._max_depth
        )
        done: list[SubmoduleCheckout] = []
        for plan in plans:
            shown = prefix + plan.path
            repo, chosen = self._fetch(plan.url, plan.commit, shown)
            sub_target = submodule_dir(target, plan.path)
            self.write_tree(repo, plan.commit, sub_target)
            log.info("submodule %s: %s at %s", shown, plan.url.canonical, plan.commit)
            done.append(
                SubmoduleCheckout(shown, plan.name, plan.url.canonical, plan.commit, depth, chosen)
            )
            done += self.submodules(
                repo, plan.commit, sub_target, plan.url, prefix=shown + "/", depth=depth + 1
            )
        return done

    # -- fetching a submodule --

    def _fetch(self, url: SSHURL, commit: str, shown: str) -> tuple[Path, ChosenKey]:
        """A local bare repository holding ``commit`` of ``url``, and the key chosen for it."""
        repo = self._repo_for(url)
        access = self._access(url)
        if self._work.has_commit(repo, commit):
            return repo, access.chosen  # an earlier submodule of this run brought it
        with open_remote(
            self._settings,
            url,
            access.key,
            trusted=access.trusted,
            runner=self._work.runner,
        ) as remote:

            def failed(run: CompletedRun) -> RepolinkError:
                error = remote.failure(run, f"fetching submodule {shown_path(shown)}")
                return _submodule_error(error, self._project, shown, url, access)

            run = remote.run(self._fetch_argv(repo, url, [f"+{commit}:refs/checkout/{commit}"]))
            if not run.ok:
                error = failed(run)
                if error.code != "git_failed" or not _unadvertised(run.stderr):
                    raise error
                # The server hands out only what its refs advertise: take those.
                refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
                run = remote.run(self._fetch_argv(repo, url, refspecs, shallow=False))
                if not run.ok:
                    raise failed(run)
        if not self._work.has_commit(repo, commit):
            raise SubmoduleFetchError(
                "submodule_commit_not_found",
                f"submodule {shown_path(shown)}: {url.canonical} has no commit {commit}",
                "push that commit to the submodule's repository, or point the submodule at a "
                "commit that was pushed (git add PATH in the superproject after checking it out)",
            )
        with self._store.session() as session:
            mark_used(session, access.chosen.key_record_id, self._clock())
        return repo, access.chosen

    def _repo_for(self, url: SSHURL) -> Path:
        """The run's temporary bare repository for ``url`` (one per URL, made on first use)."""
        repo = self._repos.get(url)
        if repo is None:
            repo = self._work.fresh("repo")
            self._work.git(
                git_argv("init", "--bare", "--quiet", str(repo)),
                what="creating a temporary repository",
            )
            self._repos[url] = repo
        return repo

    def _access(self, url: SSHURL) -> _Access:
        vault = self._vault()
        with self._store.session() as session:
            chosen = choose_key(session, self._project, url)
            try:
                key = load_private_key(session, vault, chosen.key_record_id)
            except KeyFormatError as exc:
                raise invalid_private_key(exc) from None
            trusted = knownhosts.trusted_keys(session, *url.host_port)
            return _Access(
                chosen=chosen,
                key=key,
                trusted=trusted,
            )

    @staticmethod
    def _fetch_argv(
        repo: Path, url: SSHURL, refspecs: list[str], *, shallow: bool = True
    ) -> list[str]:
        """git fetch into ``repo``: objects checked by fsck, no tags, no recursion by git."""
        return git_argv(
            *FSCK_ON_RECEIVE,
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-auto-maintenance",
            "--no-recurse-submodules",
            *(["--depth=1"] if shallow else []),
            "--",
            url.git_url,
            *refspecs,
            git_dir=repo,
        )


def _submodule_error(
    error: RepolinkError, project: str, shown: str, url: SSHURL, access: _Access
) -> SubmoduleFetchError:
    """The diagnosis of a failed submodule fetch, saying which submodule, URL and key."""
    path = shown_path(shown)
    chosen = access.chosen
    line = access.key.public_key.openssh_line(with_comment=False)
    access_hint = (
        f"point a key rule for {url.canonical} at a key that may read it (or at the deploy "
        f"key); or add this public key as a read-only access key on that repository: {line}"
    )
    # What an adapter needs to name its own command for the same fix.
    context = {"project": project, "submodule_url": url.canonical, "public_key": line}
    if error.code == "auth_failed":
        message = f"submodule {path}: the server refused {chosen.describe()} for {url.canonical}"
        return SubmoduleFetchError(
            error.code, message, access_hint, reason="submodule", context=context
        )
    if error.code == "repo_not_found":
        message = (
            f"submodule {path}: {url.canonical} does not exist or {chosen.describe()} may not "
            "read it"
        )
        return SubmoduleFetchError(
            error.code, message, access_hint, reason="submodule", context=context
        )
    return error.recast(
        SubmoduleFetchError, message=f"submodule {path} ({url.canonical}): {error.message}"
    )


def _unadvertised(stderr: str) -> bool:
    lowered = stderr.lower()
    return any(needle in lowered for needle in _UNADVERTISED)
