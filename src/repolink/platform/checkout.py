"""``checkout``: write the tree of one indexed commit into a directory, with its submodules.

The commit's own tree comes from the project's mirror, without any network and without a
clone: the mirror is read with ``git --git-dir=MIRROR --work-tree=DEST`` and a throw-away
index (``GIT_INDEX_FILE``): ``read-tree COMMIT``, then ``checkout-index --all``. Why this
route:

- a clone or fetch from the mirror would need the local transport, which the hardened
  environment forbids (``GIT_ALLOW_PROTOCOL=ssh``), and rightly so;
- ``git archive | tar -x`` writes what ``export-ignore``/``export-subst`` attributes make of
  the tree, not the tree, and hands path safety to tar;
- ``read-tree`` and ``checkout-index`` are git's own checkout code: it refuses ``..``, ``.git``
  and other unsafe paths, never writes through a symlink it made, runs no hook itself (and
  :func:`repolink.git.runner.git_argv` sets ``core.hooksPath=/dev/null`` anyway: writing an index
  would otherwise run ``post-index-change``), and sees no filter driver, because the
  environment has no global or system config;
- ``DEST`` never becomes a repository: nothing in it is run or read by a later git command.

Submodules are read from ``.gitmodules`` at that commit (``git config --blob … --no-includes``)
and from the gitlinks of its tree (``ls-tree``). Each URL goes through :mod:`repolink.urls`
before git sees it; a relative URL (``../other.git``, ``./sub.git``) is first resolved against
the superproject's URL as git does — except that it may not climb above the path's root, where
git would start eating into the host. Every URL of one level is checked before anything is
fetched. Each submodule commit is fetched over SSH into a temporary bare repository with the
key :func:`repolink.platform.key_rules.choose_key` picks for its URL, following DESIGN.md §5
exactly as a fetch does (:func:`repolink.git.remote.open_remote`: hardened environment, a
per-run known_hosts file, the key in a 0600 file removed afterwards), with
``transfer.fsckObjects`` on, no tags and no recursion by git itself. It asks for that one
commit (``--depth=1``); a server that hands out only what its refs advertise gets a fetch of
its branches and tags instead. The submodule's tree is then written into ``DEST/<path>`` the
same way, and its own submodules follow, down to :data:`MAX_SUBMODULE_DEPTH` levels.

Hidden and unknown commits are refused (``commit_hidden``, ``commit_not_found``). ``DEST``
must not exist or be an empty directory; when the checkout fails, what it wrote is removed, so
a build never starts on half a tree.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from repolink import knownhosts
from repolink.errors import (
    Conflict,
    KeyFormatError,
    NotFound,
    RepolinkError,
    SubmoduleFetchError,
    SubmoduleURLError,
    URLError,
    ValidationError,
)
from repolink.git import mirrors, runner
from repolink.git.diagnosis import invalid_private_key
from repolink.git.remote import open_remote
from repolink.keys import PrivateKey
from repolink.knownhosts import TrustedHostKey
from repolink.platform.commits import resolve_ref
from repolink.platform.connections import get_connection, parse_connection_url
from repolink.platform.key_rules import ChosenKey, choose_key
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.key_records import load_private_key, mark_used
from repolink.store.models.platform import Commit
from repolink.urls import SSHURL, parse_ssh_url
from repolink.vault import Vault, load_vault

log = logging.getLogger(__name__)

MAX_SUBMODULE_DEPTH = 8
GITMODULES = ".gitmodules"

_GITLINK_MODE = "160000"
_BLOB_MODE = "100644"
_HEX = re.compile(r"[0-9a-f]{4,64}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHOWABLE = re.compile(r"[A-Za-z0-9._/+@-]{1,200}")
_MAX_SHOWN_PATH = 200
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
class CheckoutResult:
    project: str
    commit: str
    dest: Path
    submodules: tuple[SubmoduleCheckout, ...]
    duration: float

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "commit": self.commit,
            "dest": str(self.dest),
            "submodules": [submodule.as_dict() for submodule in self.submodules],
            "duration": round(self.duration, 3),
        }


def checkout_commit(
    store: Store,
    settings: Settings,
    project: str,
    commit: str,
    dest: Path,
    *,
    vault: Vault | None = None,
    max_depth: int = MAX_SUBMODULE_DEPTH,
) -> CheckoutResult:
    """Write the tree of ``commit`` (a SHA, a unique SHA prefix, a branch or a tag) of
    ``project`` into ``dest``, submodules included."""
    started = time.monotonic()
    with store.session() as session:
        connection = get_connection(session, project)
        sha = resolve_checkout_commit(session, connection.id, commit)
        url = parse_connection_url(connection.url)
        mirror_dir = mirrors.mirror_path(settings, connection.id)
    target = Path(dest).expanduser().absolute()
    with _workspace() as work:
        local = _local_env(work)
        if not _has_commit(mirror_dir, sha, local, settings.git_timeout):
            raise NotFound(
                "commit_not_in_mirror",
                f"commit {sha} is indexed but missing from the mirror",
                f"fetch the project again: repolink fetch {project}",
            )
        created = _prepare_dest(target)
        try:
            writer = _Writer(
                store, settings, project, vault or load_vault(settings), work, max_depth
            )
            writer.write_tree(mirror_dir, sha, target)
            submodules = writer.submodules(mirror_dir, sha, target, url, prefix="", depth=1)
        except BaseException:
            _undo(target, created=created)
            raise
    log.info(
        "checked out %s of %s into %s with %d submodules", sha, project, target, len(submodules)
    )
    return CheckoutResult(project, sha, target, tuple(submodules), time.monotonic() - started)


def resolve_checkout_commit(session: Session, connection_id: str, text: str) -> str:
    """The full SHA of an indexed, visible commit named by SHA, unique prefix, branch or tag;
    ``commit_not_found``, ``commit_ambiguous`` or ``commit_hidden`` otherwise."""
    candidate = text.strip()
    row = _commit_by_sha(session, connection_id, candidate.lower())
    if row is None:
        try:
            sha = resolve_ref(session, connection_id, candidate) if candidate else None
        except NotFound:
            sha = None
        if sha is not None:
            row = session.scalar(
                select(Commit).where(Commit.connection_id == connection_id, Commit.sha == sha)
            )
    if row is None:
        shown = f" {candidate!r}" if _SHOWABLE.fullmatch(candidate) else ""
        raise NotFound(
            "commit_not_found",
            f"there is no indexed commit, branch or tag{shown}",
            "copy the SHA from `repolink commits PROJECT`; fetch first if the commit is new",
        )
    if row.hidden:
        raise Conflict(
            "commit_hidden",
            f"commit {row.sha} is hidden",
            f"unhide it first if it should be used: repolink commits unhide PROJECT {row.sha}",
        )
    return row.sha


def _commit_by_sha(session: Session, connection_id: str, prefix: str) -> Commit | None:
    if not _HEX.fullmatch(prefix):
        return None
    query = select(Commit).where(Commit.connection_id == connection_id)
    if _FULL_SHA.fullmatch(prefix):
        return session.scalar(query.where(Commit.sha == prefix))
    rows = list(session.scalars(query.where(Commit.sha.startswith(prefix)).limit(2)))
    if len(rows) > 1:
        raise ValidationError(
            "commit_ambiguous",
            f"{prefix} is the start of more than one commit",
            "give more digits of the SHA",
        )
    return rows[0] if rows else None


# -- resolving submodule URLs -----------------------------------------------------------------


def resolve_submodule_url(text: str, base: SSHURL) -> SSHURL:
    """The URL git would use for a submodule URL ``text`` of a superproject at ``base``,
    through :func:`repolink.urls.parse_ssh_url`; :class:`URLError` when refused.

    Like git: ``./x`` and ``../x`` are relative to the superproject's URL, each leading ``../``
    removing one path segment of it. Unlike git, climbing above the path's root is refused.
    """
    if not text.startswith(("./", "../")):
        return parse_ssh_url(text)
    authority, _, path = base.git_url.removeprefix("ssh://").partition("/")
    segments = path.rstrip("/").split("/")
    rest = text
    while rest.startswith(("./", "../")):
        if rest.startswith("./"):
            rest = rest[2:]
            continue
        rest = rest[3:]
        if not segments or segments == [""]:
            raise URLError(
                "url_dot_segments",
                "the relative URL climbs above the root of the superproject's path",
                "give the submodule's URL relative to a repository on the same host, like "
                "../other.git, or in full",
            )
        segments.pop()
    joined = "/".join([*segments, rest] if rest else segments)
    return parse_ssh_url(f"ssh://{authority}/{joined}")


# -- the work ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Module:
    name: str
    url: str | None
    update: str | None


@dataclass(frozen=True)
class _Access:
    """What reaching one URL takes: the key chosen for it and the host keys to trust."""

    chosen: ChosenKey
    key: PrivateKey = field(repr=False)
    trusted: list[TrustedHostKey]


@dataclass(frozen=True)
class _Planned:
    path: str
    name: str
    commit: str
    url: SSHURL


class _Writer:
    """One checkout's git work; temporary repositories and index files live in ``work``."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        project: str,
        vault: Vault,
        work: Path,
        max_depth: int,
    ) -> None:
        self.store = store
        self.settings = settings
        self.project = project
        self.vault = vault
        self.work = work
        self.max_depth = max_depth
        self._repos: dict[SSHURL, Path] = {}
        self._count = 0

    @property
    def env(self) -> dict[str, str]:
        return _local_env(self.work)

    def write_tree(self, git_dir: Path, commit: str, target: Path) -> None:
        """The tree of ``commit`` into the empty directory ``target``."""
        index = self._fresh("index")
        env = {**self.env, "GIT_INDEX_FILE": str(index)}
        try:
            for args in (("read-tree", commit), ("checkout-index", "--all")):
                self._git(
                    runner.git_argv(f"--work-tree={target}", *args, git_dir=git_dir),
                    env=env,
                    what=f"writing the tree of {commit}",
                )
        finally:
            index.unlink(missing_ok=True)

    def submodules(
        self, git_dir: Path, commit: str, target: Path, base: SSHURL, *, prefix: str, depth: int
    ) -> list[SubmoduleCheckout]:
        """Every submodule of ``commit`` (whose tree is in ``target``), recursively."""
        plans = self._plan(git_dir, commit, base, prefix, depth)
        done: list[SubmoduleCheckout] = []
        for plan in plans:
            shown = prefix + plan.path
            repo, chosen = self._fetch(plan.url, plan.commit, shown)
            sub_target = _inside(target, plan.path)
            self.write_tree(repo, plan.commit, sub_target)
            log.info("submodule %s: %s at %s", shown, plan.url.canonical, plan.commit)
            done.append(
                SubmoduleCheckout(shown, plan.name, plan.url.canonical, plan.commit, depth, chosen)
            )
            done += self.submodules(
                repo, plan.commit, sub_target, plan.url, prefix=shown + "/", depth=depth + 1
            )
        return done

    # -- reading the superproject --

    def _plan(
        self, git_dir: Path, commit: str, base: SSHURL, prefix: str, depth: int
    ) -> list[_Planned]:
        """The submodules of one level, every URL checked before anything is fetched."""
        links, gitmodules_mode = self._tree(git_dir, commit)
        if not links:
            return []
        if gitmodules_mode != _BLOB_MODE:
            first = prefix + min(links)
            raise ValidationError(
                "submodule_config_missing",
                f"the tree has submodules ({_shown_path(first)} …) but no .gitmodules file "
                "saying where they come from",
                "add them with `git submodule add URL PATH` so .gitmodules names their URLs",
            )
        modules = self._gitmodules(git_dir, commit)
        plans: list[_Planned] = []
        for path, sha in sorted(links.items()):
            shown = prefix + path
            module = modules.get(path)
            if module is None or not module.url:
                raise ValidationError(
                    "submodule_url_missing",
                    f"no URL for the submodule {_shown_path(shown)} in .gitmodules",
                    "add its url to .gitmodules (git submodule add URL PATH does it)",
                )
            if module.update == "none":
                log.info("submodule %s has update = none: left empty", _shown_path(shown))
                continue
            if depth > self.max_depth:
                raise ValidationError(
                    "submodule_too_deep",
                    f"the submodule {_shown_path(shown)} is nested more than "
                    f"{self.max_depth} levels deep",
                    "flatten the submodules, or check out the inner repository on its own",
                )
            try:
                url = resolve_submodule_url(module.url, base)
            except URLError as exc:
                raise SubmoduleURLError(
                    exc.code,
                    f"the URL of submodule {_shown_path(shown)} is refused: {exc.message}",
                    f"{exc.hint} (in .gitmodules of the superproject)",
                ) from None
            plans.append(_Planned(path, module.name, sha, url))
        return plans

    def _tree(self, git_dir: Path, commit: str) -> tuple[dict[str, str], str | None]:
        """The gitlinks of ``commit``'s tree (path → commit) and the mode of .gitmodules."""
        run = self._git(
            runner.git_argv("ls-tree", "-r", "-z", "--full-tree", commit, git_dir=git_dir),
            env=self.env,
            what=f"listing the tree of {commit}",
        )
        links: dict[str, str] = {}
        gitmodules_mode: str | None = None
        for entry in run.stdout.split(b"\0"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            mode, _kind, sha = meta.decode("ascii", "replace").split(" ", 2)
            path = raw_path.decode("utf-8", "surrogateescape")
            if mode == _GITLINK_MODE:
                links[path] = sha
            elif path == GITMODULES:
                gitmodules_mode = mode
        return links, gitmodules_mode

    def _gitmodules(self, git_dir: Path, commit: str) -> dict[str, _Module]:
        """``.gitmodules`` at ``commit``, by submodule path. Parsed by git itself, from the
        blob, without following ``include`` directives."""
        argv = runner.git_argv(
            "config",
            "--blob",
            f"{commit}:{GITMODULES}",
            "--no-includes",
            "-z",
            "--list",
            git_dir=git_dir,
        )
        run = runner.run(argv, env=self.env, timeout=self.settings.git_timeout)
        if not run.ok:
            raise ValidationError(
                "submodule_config_invalid",
                f"the .gitmodules file of commit {commit} cannot be read: "
                + _last_line(run, [self.work]),
                "fix the syntax of .gitmodules in the repository",
            )
        values: dict[str, dict[str, str]] = {}
        for item in run.stdout.split(b"\0"):
            key, _, value = item.decode("utf-8", "surrogateescape").partition("\n")
            section, dot, rest = key.partition(".")
            name, dot2, variable = rest.rpartition(".")
            if section != "submodule" or not dot or not dot2 or not name:
                continue
            values.setdefault(name, {})[variable] = value  # the last one wins, as in git
        modules: dict[str, _Module] = {}
        for name, variables in values.items():
            path = variables.get("path")
            if not path:
                continue
            if path in modules:
                raise ValidationError(
                    "submodule_config_invalid",
                    f"two submodules in .gitmodules claim the path {_shown_path(path)}",
                    "give every submodule its own path in .gitmodules",
                )
            modules[path] = _Module(name, variables.get("url"), variables.get("update"))
        return modules

    # -- fetching a submodule --

    def _fetch(self, url: SSHURL, commit: str, shown: str) -> tuple[Path, ChosenKey]:
        """A local bare repository holding ``commit`` of ``url``, and the key chosen for it."""
        repo = self._repo_for(url)
        access = self._access(url)
        if _has_commit(repo, commit, self.env, self.settings.git_timeout):
            return repo, access.chosen  # an earlier submodule of this run brought it
        with open_remote(
            self.settings,
            url,
            access.key,
            trusted=access.trusted,
        ) as remote:

            def failed(run: runner.CompletedRun) -> RepolinkError:
                error = remote.failure(run, f"fetching submodule {_shown_path(shown)}")
                return _submodule_error(error, self.project, shown, url, access)

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
        if not _has_commit(repo, commit, self.env, self.settings.git_timeout):
            raise SubmoduleFetchError(
                "submodule_commit_not_found",
                f"submodule {_shown_path(shown)}: {url.canonical} has no commit {commit}",
                "push that commit to the submodule's repository, or point the submodule at a "
                "commit that was pushed (git add PATH in the superproject after checking it out)",
            )
        with self.store.session() as session:
            mark_used(session, access.chosen.key_record_id, utcnow())
        return repo, access.chosen

    def _repo_for(self, url: SSHURL) -> Path:
        """The run's temporary bare repository for ``url`` (one per URL, made on first use)."""
        repo = self._repos.get(url)
        if repo is None:
            repo = self._fresh("repo")
            self._git(
                runner.git_argv("init", "--bare", "--quiet", str(repo)),
                env=self.env,
                what="creating a temporary repository",
            )
            self._repos[url] = repo
        return repo

    def _access(self, url: SSHURL) -> _Access:
        with self.store.session() as session:
            chosen = choose_key(session, self.project, url)
            try:
                key = load_private_key(session, self.vault, chosen.key_record_id)
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
        return runner.git_argv(
            "-c",
            "transfer.fsckObjects=true",
            "-c",
            "fetch.fsckObjects=true",
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

    # -- helpers --

    def _fresh(self, kind: str) -> Path:
        self._count += 1
        return self.work / f"{kind}-{self._count}"

    def _git(self, argv: list[str], *, env: Mapping[str, str], what: str) -> runner.CompletedRun:
        run = runner.run(argv, env=env, timeout=self.settings.git_timeout)
        return run.check(what, code="checkout_failed", secrets_paths=[self.work])


def _submodule_error(
    error: RepolinkError, project: str, shown: str, url: SSHURL, access: _Access
) -> SubmoduleFetchError:
    """The diagnosis of a failed submodule fetch, saying which submodule, URL and key."""
    path = _shown_path(shown)
    chosen = access.chosen
    line = access.key.public_key.openssh_line(with_comment=False)
    access_hint = (
        f"point a key rule at a key that may read it: repolink key-rules add {project} "
        f"{url.canonical} --key FINGERPRINT (or deploy); or add this public key as a read-only "
        f"access key on that repository: {line}"
    )
    if error.code == "auth_failed":
        message = f"submodule {path}: the server refused {chosen.describe()} for {url.canonical}"
        return SubmoduleFetchError(error.code, message, access_hint)
    if error.code == "repo_not_found":
        message = (
            f"submodule {path}: {url.canonical} does not exist or {chosen.describe()} may not "
            "read it"
        )
        return SubmoduleFetchError(error.code, message, access_hint)
    return SubmoduleFetchError(
        error.code, f"submodule {path} ({url.canonical}): {error.message}", error.hint
    )


# -- the destination --------------------------------------------------------------------------


def _prepare_dest(target: Path) -> bool:
    """Make sure ``target`` is an empty directory; True when it was created here."""
    resolved = target.resolve()
    try:
        info = resolved.stat()
    except FileNotFoundError:
        try:
            resolved.mkdir(parents=True)
        except OSError as exc:
            raise _dest_unusable(target, exc) from None
        return True
    except OSError as exc:
        raise _dest_unusable(target, exc) from None
    if not stat.S_ISDIR(info.st_mode):
        raise Conflict(
            "checkout_dest_not_empty",
            f"{target} exists and is not a directory",
            "give a directory that does not exist yet or is empty",
        )
    if any(resolved.iterdir()):
        raise Conflict(
            "checkout_dest_not_empty",
            f"{target} is not empty",
            "give a directory that does not exist yet or is empty",
        )
    return False


def _dest_unusable(target: Path, exc: OSError) -> ValidationError:
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return ValidationError(
        "checkout_dest_invalid",
        f"cannot use {target} as the checkout directory: {reason}",
        "give a directory that can be created, or an empty one",
    )


def _undo(target: Path, *, created: bool) -> None:
    """Remove what a failed checkout wrote (the directory too, when it made it)."""
    resolved = target.resolve()
    if created:
        shutil.rmtree(resolved, ignore_errors=True)
        return
    for child in resolved.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _inside(target: Path, relative: str) -> Path:
    """``target/relative`` after checking that every step is a real directory (not a link)
    below ``target``, and that it is empty: where checkout-index left a gitlink's place."""
    current = target
    for segment in relative.split("/"):
        if segment in ("", ".", "..") or segment.lower() == ".git":
            raise ValidationError(
                "submodule_path_invalid",
                f"the submodule path {_shown_path(relative)} is not a plain relative path",
                "fix the submodule's path in the repository",
            )
        current = current / segment
        try:
            info = current.lstat()
        except OSError:
            info = None
        if info is None or not stat.S_ISDIR(info.st_mode):
            raise ValidationError(
                "submodule_path_invalid",
                f"the place of submodule {_shown_path(relative)} is not a directory of the tree",
                "fix the submodule's path in the repository",
            )
    if any(current.iterdir()):
        raise ValidationError(
            "submodule_path_invalid",
            f"the place of submodule {_shown_path(relative)} is not empty",
            "fix the submodule's path in the repository",
        )
    return current


# -- small helpers ----------------------------------------------------------------------------


@contextmanager
def _workspace() -> Iterator[Path]:
    """A private temporary directory for one checkout, removed afterwards however it ends."""
    work = Path(tempfile.mkdtemp(prefix="repolink-checkout-"))
    try:
        os.chmod(work, 0o700)
        (work / "home").mkdir(mode=0o700)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _local_env(work: Path) -> dict[str, str]:
    return runner.hardened_env(work / "home")


def _has_commit(git_dir: Path, sha: str, env: Mapping[str, str], timeout: float) -> bool:
    if not (git_dir / "HEAD").is_file():
        return False
    run = runner.run(
        runner.git_argv("cat-file", "-e", f"{sha}^{{commit}}", git_dir=git_dir),
        env=env,
        timeout=timeout,
    )
    return run.ok


def _unadvertised(stderr: str) -> bool:
    lowered = stderr.lower()
    return any(needle in lowered for needle in _UNADVERTISED)


def _shown_path(path: str) -> str:
    """A repository path as a message may show it: plain when printable, else escaped."""
    shown = path if path.isprintable() else repr(path)[1:-1]
    return shown if len(shown) <= _MAX_SHOWN_PATH else shown[:_MAX_SHOWN_PATH] + "…"


def _last_line(run: runner.CompletedRun, secrets_paths: list[Path]) -> str:
    lines = runner.scrub(run.stderr, secrets_paths=secrets_paths).splitlines()
    return next((line.strip()[:300] for line in reversed(lines) if line.strip()), "no message")
