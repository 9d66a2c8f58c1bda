"""What a checkout finds in one commit: its submodules, read and checked before any fetch.

Submodules are read from ``.gitmodules`` at that commit (``git config --blob … --no-includes``)
and from the gitlinks of its tree (``ls-tree``). Each URL goes through :mod:`repolink.urls`
before git sees it; a relative URL (``../other.git``, ``./sub.git``) is first resolved against
the superproject's URL as git does — except that it may not climb above the path's root, where
git would start eating into the host (:func:`resolve_submodule_url`). Every URL of one level is
checked before anything is fetched.

:class:`Workspace` is one checkout's private temporary directory and the local git runs made in
it (hardened environment, its own ``HOME``, a time limit), through the checkout's runner.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from repolink.errors import SubmoduleURLError, URLError, ValidationError
from repolink.git.environment import git_argv, hardened_env
from repolink.git.keyfiles import scrub
from repolink.git.runner import CompletedRun, GitRunner
from repolink.platform.checkout_dest import shown_path
from repolink.urls import SSHURL, parse_ssh_url

log = logging.getLogger(__name__)

GITMODULES = ".gitmodules"

_GITLINK_MODE = "160000"
_BLOB_MODE = "100644"


@dataclass(frozen=True)
class PlannedSubmodule:
    """One submodule to check out: its path in the tree, name, pinned commit and URL."""

    path: str
    name: str
    commit: str
    url: SSHURL


@dataclass(frozen=True)
class _Module:
    name: str
    url: str | None
    update: str | None


class Workspace:
    """A checkout's temporary directory (``path``) and the local git runs made in it
    (through ``runner``, which the checkout's remote sessions use too)."""

    def __init__(self, path: Path, timeout: float, runner: GitRunner) -> None:
        self.path = path
        self.timeout = timeout
        self.runner = runner
        self._count = 0

    @classmethod
    @contextmanager
    def create(cls, timeout: float, *, runner: GitRunner) -> Iterator[Workspace]:
        """A private temporary directory for one checkout, removed afterwards however it
        ends."""
        work = Path(tempfile.mkdtemp(prefix="repolink-checkout-"))
        try:
            os.chmod(work, 0o700)
            (work / "home").mkdir(mode=0o700)
            yield cls(work, timeout, runner)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return hardened_env(self.path / "home")

    def fresh(self, kind: str) -> Path:
        """A new path in the workspace (nothing is created)."""
        self._count += 1
        return self.path / f"{kind}-{self._count}"

    def git(
        self, argv: list[str], *, what: str, env: Mapping[str, str] | None = None
    ) -> CompletedRun:
        """Run local git; a failure is ``checkout_failed``, scrubbed of workspace paths."""
        run = self.runner.run(argv, env=self.env if env is None else env, timeout=self.timeout)
        return run.check(what, code="checkout_failed", secrets_paths=[self.path])

    def has_commit(self, git_dir: Path, sha: str) -> bool:
        if not (git_dir / "HEAD").is_file():
            return False
        run = self.runner.run(
            git_argv("cat-file", "-e", f"{sha}^{{commit}}", git_dir=git_dir),
            env=self.env,
            timeout=self.timeout,
        )
        return run.ok

    def plan_submodules(
        self, git_dir: Path, commit: str, base: SSHURL, *, prefix: str, depth: int, max_depth: int
    ) -> list[PlannedSubmodule]:
        """The submodules of one level, every URL checked before anything is fetched."""
        links, gitmodules_mode = self._tree(git_dir, commit)
        if not links:
            return []
        if gitmodules_mode != _BLOB_MODE:
            first = prefix + min(links)
            raise ValidationError(
                "submodule_config_missing",
                f"the tree has submodules ({shown_path(first)} …) but no .gitmodules file "
                "saying where they come from",
                "add them with `git submodule add URL PATH` so .gitmodules names their URLs",
            )
        modules = self._gitmodules(git_dir, commit)
        plans: list[PlannedSubmodule] = []
        for path, sha in sorted(links.items()):
            shown = prefix + path
            module = modules.get(path)
            if module is None or not module.url:
                raise ValidationError(
                    "submodule_url_missing",
                    f"no URL for the submodule {shown_path(shown)} in .gitmodules",
                    "add its url to .gitmodules (git submodule add URL PATH does it)",
                )
            if module.update == "none":
                log.info("submodule %s has update = none: left empty", shown_path(shown))
                continue
            if depth > max_depth:
                raise ValidationError(
                    "submodule_too_deep",
                    f"the submodule {shown_path(shown)} is nested more than "
                    f"{max_depth} levels deep",
                    "flatten the submodules, or check out the inner repository on its own",
                )
            try:
                url = resolve_submodule_url(module.url, base)
            except URLError as exc:
                raise SubmoduleURLError(
                    exc.code,
                    f"the URL of submodule {shown_path(shown)} is refused: {exc.message}",
                    f"{exc.hint} (in .gitmodules of the superproject)",
                ) from None
            plans.append(PlannedSubmodule(path, module.name, sha, url))
        return plans

    def _tree(self, git_dir: Path, commit: str) -> tuple[dict[str, str], str | None]:
        """The gitlinks of ``commit``'s tree (path → commit) and the mode of .gitmodules."""
        run = self.git(
            git_argv("ls-tree", "-r", "-z", "--full-tree", commit, git_dir=git_dir),
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
        argv = git_argv(
            "config",
            "--blob",
            f"{commit}:{GITMODULES}",
            "--no-includes",
            "-z",
            "--list",
            git_dir=git_dir,
        )
        run = self.runner.run(argv, env=self.env, timeout=self.timeout)
        if not run.ok:
            raise ValidationError(
                "submodule_config_invalid",
                f"the .gitmodules file of commit {commit} cannot be read: "
                + _last_line(run, [self.path]),
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
                    f"two submodules in .gitmodules claim the path {shown_path(path)}",
                    "give every submodule its own path in .gitmodules",
                )
            modules[path] = _Module(name, variables.get("url"), variables.get("update"))
        return modules


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


def _last_line(run: CompletedRun, secrets_paths: list[Path]) -> str:
    lines = scrub(run.stderr, secrets_paths=secrets_paths).splitlines()
    return next((line.strip()[:300] for line in reversed(lines) if line.strip()), "no message")
