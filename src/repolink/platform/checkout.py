"""``checkout``: write the tree of one indexed commit into a directory, with its submodules.

The commit's own tree comes from the project's mirror, without any network and without a
clone: the mirror is read with ``git --git-dir=MIRROR --work-tree=DEST`` and a throw-away
index (``GIT_INDEX_FILE``): ``read-tree COMMIT``, then ``checkout-index --all``. Why this
route:

- a clone or fetch from the mirror would need the local transport, which the hardened
  environment forbids (``GIT_ALLOW_PROTOCOL=ssh``), and rightly so;
- ``git archive | tar -x`` writes what ``export-ignore``/``export-subst`` attributes make of
  the tree, not the tree, and hands path safety to tar;
- ``read-tree`` and ``checkout-index`` are git's own checkout code: it refuses ``..``, ``.git`` and
  other unsafe paths, never writes through a symlink it made, runs no hook itself (and
  :func:`repolink.git.environment.git_argv` sets ``core.hooksPath=/dev/null`` anyway: writing an
  index would otherwise run ``post-index-change``), and sees no filter driver, because the
  environment has no global or system config;
- ``DEST`` never becomes a repository: nothing in it is run or read by a later git command.

The pieces, one module each: the submodules of a commit, read and checked
(:mod:`~repolink.platform.submodule_plan`); trees written and submodules fetched with the key
their URL's key rule picks (:mod:`~repolink.platform.submodules`, down to
:data:`MAX_SUBMODULE_DEPTH` levels); the destination (:mod:`~repolink.platform.checkout_dest`).

Hidden and unknown commits are refused (``commit_hidden``, ``commit_not_found``). ``DEST``
must not exist or be an empty directory; when the checkout fails, what it wrote is removed, so
a build never starts on half a tree. The commit is resolved in one short transaction; git runs
with none open.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from repolink.errors import Conflict, NotFound, ValidationError
from repolink.git import mirrors
from repolink.git.runner import GitRunner
from repolink.platform.checkout_dest import prepare_dest, undo
from repolink.platform.commits import resolve_ref
from repolink.platform.connections import get_connection, parse_connection_url
from repolink.platform.submodule_plan import Workspace
from repolink.platform.submodules import SubmoduleCheckout, TreeWriter
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models.platform import Commit
from repolink.store.types import Clock
from repolink.vault import VaultLoader

log = logging.getLogger(__name__)

MAX_SUBMODULE_DEPTH = 8

_HEX = re.compile(r"[0-9a-f]{4,64}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHOWABLE = re.compile(r"[A-Za-z0-9._/+@-]{1,200}")


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


class CheckoutService:
    """Checkouts of indexed commits, with their submodules."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        vault: VaultLoader,
        *,
        runner: GitRunner,
        clock: Clock = utcnow,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._runner = runner
        self._clock = clock

    def checkout_commit(
        self,
        project: str,
        commit: str,
        dest: Path,
        *,
        max_depth: int = MAX_SUBMODULE_DEPTH,
    ) -> CheckoutResult:
        """Write the tree of ``commit`` (a SHA, a unique SHA prefix, a branch or a tag) of
        ``project`` into ``dest``, submodules included."""
        started = time.monotonic()
        with self._store.session() as session:
            connection = get_connection(session, project)
            sha = _resolve_commit(session, connection.id, project, commit)
            url = parse_connection_url(connection.url)
            mirror_dir = mirrors.mirror_path(self._settings, connection.id)
        target = Path(dest).expanduser().absolute()
        with Workspace.create(self._settings.git_timeout, runner=self._runner) as work:
            if not work.has_commit(mirror_dir, sha):
                raise NotFound(
                    "commit_not_in_mirror",
                    f"commit {sha} is indexed but missing from the mirror",
                    "fetch the project again",
                    context={"project": project},
                )
            created = prepare_dest(target)
            try:
                writer = TreeWriter(
                    self._settings,
                    self._store,
                    self._vault,
                    self._clock,
                    project=project,
                    work=work,
                    max_depth=max_depth,
                )
                writer.write_tree(mirror_dir, sha, target)
                submodules = writer.submodules(mirror_dir, sha, target, url, prefix="", depth=1)
            except BaseException:
                undo(target, created=created)
                raise
        log.info(
            "checked out %s of %s into %s with %d submodules", sha, project, target, len(submodules)
        )
        return CheckoutResult(project, sha, target, tuple(submodules), time.monotonic() - started)


def _resolve_commit(session: Session, connection_id: str, project: str, text: str) -> str:
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
            "copy the SHA from the project's commit list; fetch first if the commit is new",
            context={"project": project},
        )
    if row.hidden:
        raise Conflict(
            "commit_hidden",
            f"commit {row.sha} is hidden",
            "unhide it first if it should be used",
            context={"project": project, "sha": row.sha},
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
