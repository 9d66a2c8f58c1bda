"""The commit picker: list, filter and page through indexed commits; hide and unhide them.

All refs: newest first by commit time (ties: the later indexed — a child before its parent),
read from the index with keyset pagination on ``(commit_time, seq)``, which the index
``ix_commits_listing`` serves directly — a page costs the same at any depth.

One ref: the commits reachable from that ref's tip, in git's own walk order (newest commit
time first), streamed from ``git rev-list`` on the mirror and matched against the index batch
by batch; the walk stops as soon as the page is full. Its cursor names the last commit shown.

Hidden commits are left out unless ``include_hidden``; ``refs`` always lists every branch and
tag with its tip, hidden or not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from repolink.errors import NotFound, ValidationError
from repolink.git import mirrors
from repolink.git.environment import git_argv
from repolink.git.runner import GitRunner
from repolink.git.stream import LineStream
from repolink.platform import commit_pages
from repolink.platform.commit_cursors import decode_sha_cursor, decode_time_cursor
from repolink.platform.commit_pages import (
    CONNECTION_OF_PROJECT,
    HEX,
    MAX_SEARCH_LENGTH,
    CommitInfo,
    CommitPage,
    matching_in_order,
    page_all,
    ref_page,
    search_text,
    utc,
    with_refs,
)
from repolink.platform.paging import DEFAULT_LIMIT, MAX_LIMIT
from repolink.settings import Settings

# The ORM is imported by the methods that use it: a page of commits is read by fixed SQL texts
# (repolink.platform.commit_pages), and `repolink commits` imports no SQLAlchemy (issue 10 §2).
if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.orm import Session

    from repolink.store import Store
    from repolink.store.plain import PlainReader

__all__ = [
    "MAX_SEARCH_LENGTH",
    "CommitInfo",
    "CommitPage",
    "CommitService",
    "RefInfo",
    "resolve_ref",
]

log = logging.getLogger(__name__)

MIN_SHA_PREFIX = 4
# How many of the commits one fetch added are listed for it (a first fetch adds the history).
ADDED_LIMIT = 100
_REF_BATCH = 200
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

_INDEX_VERSION = (
    "SELECT c.id, c.index_generation FROM repository_connections c"
    " JOIN projects p ON p.id = c.project_id WHERE p.slug = :slug"
)


@dataclass(frozen=True)
class RefInfo:
    name: str
    kind: str
    target: str
    commit_sha: str
    commit_time: datetime | None
    subject: str | None
    hidden: bool

    @property
    def short_name(self) -> str:
        for prefix in ("refs/heads/", "refs/tags/"):
            if self.name.startswith(prefix):
                return self.name[len(prefix) :]
        return self.name

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "short_name": self.short_name,
            "kind": self.kind,
            "target": self.target,
            "commit_sha": self.commit_sha,
            "commit_time": self.commit_time.isoformat() if self.commit_time else None,
            "subject": self.subject,
            "hidden": self.hidden,
        }


class CommitService:
    """The commit picker of a project: pages of commits, its refs, hiding and unhiding.

    Each method reads in transactions of its own. The one-ref listing walks the mirror with
    ``git rev-list`` outside any transaction, matching each batch of its output against the
    index in a short read transaction.
    """

    def __init__(self, settings: Settings, store: Store, *, runner: GitRunner) -> None:
        self._settings = settings
        self._store = store
        self._runner = runner

    def list_commits(
        self,
        project: str,
        *,
        ref: str | None = None,
        search: str | None = None,
        include_hidden: bool = False,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> CommitPage:
        """One page of the project's commits, newest first (see the module text for the
        order)."""
        if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ValidationError(
                "limit_invalid",
                f"the page size must be 1 to {MAX_LIMIT}",
                f"ask for a page of 1 to {MAX_LIMIT} commits",
                context={"max": str(MAX_LIMIT)},
            )
        after = decode_time_cursor(cursor) if ref is None and cursor is not None else None
        searched = search_text(search)

        def read(db: PlainReader, connection_id: str) -> CommitPage | str:
            if ref is None:
                return page_all(db, connection_id, searched, include_hidden, limit, after)
            return commit_pages.resolve_ref(db, connection_id, ref)

        with self._store.plain() as db:
            found = db.scalar(CONNECTION_OF_PROJECT, {"slug": project})
            answer = None if found is None else read(db, str(found))
        if found is None:
            # No such project or no connection: the ORM's look-up says which, with its hints
            # (a project's name given for its slug). Connected in between: read as above.
            found = self._connection_id(project)
            with self._store.plain() as db:
                answer = read(db, found)
        if isinstance(answer, CommitPage):
            return answer
        assert answer is not None
        connection_id = str(found)
        if not (mirrors.mirror_path(self._settings, connection_id) / "HEAD").is_file():
            # Indexed, but its mirror is gone or was never completed (a first clone that failed
            # after its commits were indexed): one ref's walk needs the mirror.
            raise NotFound(
                "mirror_missing",
                f"the mirror of project {project} is missing, so the commits of one ref cannot "
                "be walked",
                "fetch the project again",
                context={"project": project},
            )
        return self._page_ref(connection_id, answer, searched, include_hidden, limit, cursor)

    def _connection_id(self, project: str) -> str:
        from repolink.platform.connections import get_connection

        with self._store.session() as session:
            return get_connection(session, project).id

    def index_version(self, project: str) -> str | None:
        """Which state of the project's commit index a page read now would show:
        ``<connection id>.<index generation>``, ``None`` when it is not connected.

        The database moves the generation on every change of the index (migration 0019), so
        a page read after this returned a version shows that version's index or a newer one;
        a page stored under a version may be answered again while this returns the same."""
        with self._store.plain() as db:
            rows = db.rows(_INDEX_VERSION, {"slug": project})
        return None if not rows else f"{rows[0]['id']}.{rows[0]['index_generation']}"

    def get_commit(self, project: str, sha: str) -> CommitInfo:
        """One indexed commit, by its full SHA or a unique prefix, hidden or not."""
        from sqlalchemy import select

        from repolink.platform.connections import get_connection
        from repolink.store.models.platform import Commit

        with self._store.session() as session:
            connection = get_connection(session, project)
            full = _resolve_sha(session, connection.id, sha)
            rows = list(
                session.execute(
                    select(*_columns()).where(
                        Commit.connection_id == connection.id, Commit.sha == full
                    )
                )
            )
            return _with_refs(session, connection.id, rows)[0]

    def added_commits(
        self, project: str, first_seq: int, last_seq: int, *, limit: int = ADDED_LIMIT
    ) -> list[CommitInfo]:
        """The commits one fetch indexed (index numbers ``first_seq`` to ``last_seq``), newest
        first as the index numbered them (children before parents), at most ``limit``."""
        from sqlalchemy import select

        from repolink.platform.connections import get_connection
        from repolink.store.models.platform import Commit

        with self._store.session() as session:
            connection = get_connection(session, project)
            rows = list(
                session.execute(
                    select(*_columns())
                    .where(
                        Commit.connection_id == connection.id,
                        Commit.seq >= first_seq,
                        Commit.seq <= last_seq,
                    )
                    .order_by(Commit.seq.desc())
                    .limit(limit)
                )
            )
            return _with_refs(session, connection.id, rows)

    def list_refs(self, project: str) -> list[RefInfo]:
        """Every branch, then every tag, with its tip commit."""
        from sqlalchemy import and_, select

        from repolink.platform.connections import get_connection
        from repolink.store.models.platform import Commit, Ref

        with self._store.session() as session:
            connection = get_connection(session, project)
            rows = session.execute(
                select(Ref, Commit.commit_time, Commit.subject, Commit.hidden)
                .outerjoin(
                    Commit,
                    and_(Commit.connection_id == Ref.connection_id, Commit.sha == Ref.commit_sha),
                )
                .where(Ref.connection_id == connection.id)
                .order_by(Ref.kind, Ref.name)
            )
            return [
                RefInfo(
                    name=row.name,
                    kind=row.kind,
                    target=row.target,
                    commit_sha=row.commit_sha,
                    commit_time=utc(commit_time) if commit_time is not None else None,
                    subject=subject,
                    hidden=bool(hidden),
                )
                for row, commit_time, subject, hidden in rows
            ]

    def hide_commits(self, project: str, shas: Iterable[str]) -> list[str]:
        """Hide commits (full SHAs or unique prefixes); return their full SHAs."""
        return self._set_hidden(project, shas, hidden=True)

    def unhide_commits(self, project: str, shas: Iterable[str]) -> list[str]:
        """Show hidden commits again; return their full SHAs."""
        return self._set_hidden(project, shas, hidden=False)

    def _set_hidden(self, project: str, shas: Iterable[str], *, hidden: bool) -> list[str]:
        from sqlalchemy import update

        from repolink.platform.connections import get_connection
        from repolink.store.models.platform import Commit

        with self._store.session() as session:
            connection = get_connection(session, project)
            wanted = list(shas)
            if not wanted:
                raise ValidationError(
                    "commit_required",
                    "no commit given",
                    "give one or more commit SHAs (or prefixes)",
                )
            resolved = [_resolve_sha(session, connection.id, sha) for sha in wanted]
            session.execute(
                update(Commit)
                .where(Commit.connection_id == connection.id, Commit.sha.in_(resolved))
                .values(hidden=hidden)
            )
        log.info(
            "%s %d commits of project %s", "hid" if hidden else "unhid", len(set(resolved)), project
        )
        return list(dict.fromkeys(resolved))

    # -- one ref: git's walk from its tip, matched against the index ---------------------------

    def _page_ref(
        self,
        connection_id: str,
        tip: str,
        search: str | None,
        include_hidden: bool,
        limit: int,
        cursor: str | None,
    ) -> CommitPage:
        settings = self._settings
        after = decode_sha_cursor(cursor) if cursor is not None else None
        path = mirrors.mirror_path(settings, connection_id)
        argv = git_argv("rev-list", tip, git_dir=path)
        found: list[Mapping[str, Any]] = []
        skipping = after is not None
        with LineStream(
            argv,
            env=mirrors.local_env(settings),
            timeout=settings.git_timeout,
            runner=self._runner,
            batch_lines=_REF_BATCH,
        ) as lines:
            for batch in lines:
                shas = [line.decode("ascii", "replace") for line in batch if line]
                if skipping:
                    assert after is not None
                    if after not in shas:
                        continue
                    shas = shas[shas.index(after) + 1 :]
                    skipping = False
                if not shas:
                    continue
                # One short read per batch: no transaction stays open while git walks on.
                with self._store.plain() as db:
                    found += matching_in_order(db, connection_id, search, include_hidden, shas)
                    if len(found) > limit:
                        return ref_page(db, connection_id, found, limit)
        if skipping:
            raise ValidationError(
                "cursor_stale",
                "the commit this cursor continues from is no longer on the ref",
                "the ref was rewritten since the last page: list again from the first page",
            )
        if lines.result is not None:
            lines.result.check("listing the commits of the ref")
        with self._store.plain() as db:
            return ref_page(db, connection_id, found, limit)


def resolve_ref(session: Session, connection_id: str, ref: str) -> str:
    """The commit a branch or tag points at (:func:`repolink.platform.commit_pages.resolve_ref`),
    inside the caller's transaction."""
    from repolink.store.plain import CoreReader

    return commit_pages.resolve_ref(CoreReader(session.connection()), connection_id, ref)


def _columns() -> tuple[Any, ...]:
    from repolink.store.models.platform import Commit

    return (
        Commit.sha,
        Commit.seq,
        Commit.parents,
        Commit.author_name,
        Commit.author_email,
        Commit.author_time,
        Commit.commit_time,
        Commit.subject,
        Commit.hidden,
    )


def _with_refs(session: Session, connection_id: str, rows: Iterable[Row[Any]]) -> list[CommitInfo]:
    from repolink.store.plain import CoreReader

    mappings = [dict(row._mapping) for row in rows]
    return with_refs(CoreReader(session.connection()), connection_id, mappings)


def _resolve_sha(session: Session, connection_id: str, text: str) -> str:
    from sqlalchemy import select

    from repolink.store.models.platform import Commit

    prefix = text.strip().lower()
    if not HEX.fullmatch(prefix):
        raise ValidationError(
            "commit_sha_invalid",
            f"a commit is named by {MIN_SHA_PREFIX} to 64 hex digits of its SHA",
            "copy the SHA from the project's commit list",
        )
    if _FULL_SHA.fullmatch(prefix):
        matches = list(
            session.scalars(
                select(Commit.sha).where(
                    Commit.connection_id == connection_id, Commit.sha == prefix
                )
            )
        )
    else:
        matches = list(
            session.scalars(
                select(Commit.sha)
                .where(
                    Commit.connection_id == connection_id,
                    Commit.sha.startswith(prefix, autoescape=True),
                )
                .limit(2)
            )
        )
    if not matches:
        raise NotFound(
            "commit_not_found",
            f"no indexed commit {prefix}",
            "check the SHA; fetch first if the commit is new",
        )
    if len(matches) > 1:
        raise ValidationError(
            "commit_ambiguous",
            f"{prefix} is the start of more than one commit",
            "give more digits of the SHA",
        )
    return matches[0]
