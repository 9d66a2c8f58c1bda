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

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, TextClause, and_, or_, select, text, update
from sqlalchemy.orm import Session

from repolink.errors import NotFound, ValidationError
from repolink.git import mirrors
from repolink.git.environment import git_argv
from repolink.git.runner import GitRunner
from repolink.git.stream import LineStream
from repolink.platform.commit_cursors import decode_sha_cursor, decode_time_cursor, encode_cursor
from repolink.platform.connections import get_connection
from repolink.platform.paging import DEFAULT_LIMIT, MAX_LIMIT
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.platform import Commit, Ref

log = logging.getLogger(__name__)

MIN_SHA_PREFIX = 4
MAX_SEARCH_LENGTH = 200
# How many of the commits one fetch added are listed for it (a first fetch adds the history).
ADDED_LIMIT = 100
_REF_BATCH = 200
_HEX = re.compile(r"[0-9a-f]{4,64}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHOWABLE_REF = re.compile(r"[A-Za-z0-9._/+@-]{1,200}")

_COLUMNS = (
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


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_time: datetime
    commit_time: datetime
    subject: str
    hidden: bool
    refs: tuple[str, ...]

    @property
    def short_sha(self) -> str:
        return self.sha[:12]

    def as_dict(self) -> dict[str, object]:
        return {
            "sha": self.sha,
            "parents": list(self.parents),
            "author_name": self.author_name,
            "author_email": self.author_email,
            "author_time": self.author_time.isoformat(),
            "commit_time": self.commit_time.isoformat(),
            "subject": self.subject,
            "hidden": self.hidden,
            "refs": list(self.refs),
        }


@dataclass(frozen=True)
class CommitPage:
    commits: list[CommitInfo]
    next_cursor: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "commits": [commit.as_dict() for commit in self.commits],
            "next_cursor": self.next_cursor,
        }


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
        if ref is None:
            after = decode_time_cursor(cursor) if cursor is not None else None
            searched = _search_text(search)
            with self._store.reading() as db:
                found = db.execute(_CONNECTION_OF_PROJECT, {"slug": project}).scalar()
                if found is not None:
                    return _page_all(db, found, searched, include_hidden, limit, after)
        with self._store.session() as session:
            connection = get_connection(session, project)
            filters = _filters(connection.id, search, include_hidden)
            if ref is None:  # connected in between: the page as above, in this transaction
                return _page_all(
                    session.connection(),
                    connection.id,
                    _search_text(search),
                    include_hidden,
                    limit,
                    decode_time_cursor(cursor) if cursor is not None else None,
                )
            tip = resolve_ref(session, connection.id, ref)
            connection_id = connection.id
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
        return self._page_ref(connection_id, tip, filters, limit, cursor)

    def index_version(self, project: str) -> str | None:
        """Which state of the project's commit index a page read now would show:
        ``<connection id>.<index generation>``, ``None`` when it is not connected.

        The database moves the generation on every change of the index (migration 0019), so
        a page read after this returned a version shows that version's index or a newer one;
        a page stored under a version may be answered again while this returns the same."""
        with self._store.reading() as db:
            row = db.execute(_INDEX_VERSION, {"slug": project}).first()
        return None if row is None else f"{row.id}.{row.index_generation}"

    def get_commit(self, project: str, sha: str) -> CommitInfo:
        """One indexed commit, by its full SHA or a unique prefix, hidden or not."""
        with self._store.session() as session:
            connection = get_connection(session, project)
            full = _resolve_sha(session, connection.id, sha)
            rows = list(
                session.execute(
                    select(*_COLUMNS).where(
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
        with self._store.session() as session:
            connection = get_connection(session, project)
            rows = list(
                session.execute(
                    select(*_COLUMNS)
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
                    commit_time=_utc(commit_time) if commit_time is not None else None,
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
        self, connection_id: str, tip: str, filters: list[Any], limit: int, cursor: str | None
    ) -> CommitPage:
        settings = self._settings
        after = decode_sha_cursor(cursor) if cursor is not None else None
        path = mirrors.mirror_path(settings, connection_id)
        argv = git_argv("rev-list", tip, git_dir=path)
        found: list[Any] = []
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
                with self._store.session() as session:
                    found += _matching_in_order(session, filters, shas)
                    if len(found) > limit:
                        return _ref_page(session, connection_id, found, limit)
        if skipping:
            raise ValidationError(
                "cursor_stale",
                "the commit this cursor continues from is no longer on the ref",
                "the ref was rewritten since the last page: list again from the first page",
            )
        if lines.result is not None:
            lines.result.check("listing the commits of the ref")
        with self._store.session() as session:
            return _ref_page(session, connection_id, found, limit)


def resolve_ref(session: Session, connection_id: str, ref: str) -> str:
    """The commit a branch or tag points at: ``main``, ``refs/heads/main``, ``v1.0`` …

    A branch wins over a tag of the same short name. (Inside a caller's transaction.)
    """
    names = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    for name in names:
        commit = session.scalar(
            select(Ref.commit_sha).where(Ref.connection_id == connection_id, Ref.name == name)
        )
        if commit is not None:
            return commit
    shown = f" {ref!r}" if _SHOWABLE_REF.fullmatch(ref) else ""
    raise NotFound(
        "ref_not_found",
        f"there is no branch or tag{shown}",
        "list the project's branches and tags (fetch first if it is new)",
    )


# -- all refs: keyset pagination on the index -------------------------------------------------


_CONNECTION_OF_PROJECT = text(
    "SELECT c.id FROM repository_connections c JOIN projects p ON p.id = c.project_id"
    " WHERE p.slug = :slug"
)

_INDEX_VERSION = text(
    "SELECT c.id, c.index_generation FROM repository_connections c"
    " JOIN projects p ON p.id = c.project_id WHERE p.slug = :slug"
)


@functools.cache
def _page_statement(*, search: bool, include_hidden: bool, after: bool) -> TextClause:
    """One page of commits and the refs that point at them, in one statement: the page is
    read on ``ix_commits_listing`` (a keyset range, in the index's order), its refs looked up
    in ``ix_refs_commit``, one row per (commit, ref). Plain SQL, one text per kind of page:
    the ORM's statement building and row loading cost several times the query."""
    where = ["connection_id = :connection_id"]
    if not include_hidden:
        where.append("NOT hidden")
    if search:
        # As SQLAlchemy's ilike renders on every backend but PostgreSQL (whose ILIKE is the
        # same for what a search can hold): case-insensitive, with backslash escapes.
        where.append("(lower(subject) LIKE lower(:pattern) ESCAPE '\\' OR sha LIKE :sha_prefix)")
    if after:
        where.append("(commit_time, seq) < (:after_time, :after_seq)")
    # Only the fixed fragments above are joined into the text; every value is bound.
    return text(
        "WITH page AS ("  # noqa: S608
        " SELECT sha, seq, parents, author_name, author_email, author_time, commit_time,"
        " subject, hidden FROM commits"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY commit_time DESC, seq DESC LIMIT :limit)"
        " SELECT page.sha, page.seq, page.parents, page.author_name, page.author_email,"
        " page.author_time, page.commit_time, page.subject, page.hidden, refs.name AS ref"
        " FROM page LEFT JOIN refs"
        " ON refs.connection_id = :connection_id AND refs.commit_sha = page.sha"
    )


def _page_all(
    db: Connection,
    connection_id: str,
    search: str | None,
    include_hidden: bool,
    limit: int,
    after: tuple[int, int] | None,
) -> CommitPage:
    statement = _page_statement(
        search=search is not None, include_hidden=include_hidden, after=after is not None
    )
    params: dict[str, object] = {"connection_id": connection_id, "limit": limit + 1}
    if search is not None:
        params["pattern"] = "%" + _escape_like(search) + "%"
        # A SHA prefix only when the text could be one; else a pattern no SHA matches.
        params["sha_prefix"] = search.lower() + "%" if _HEX.fullmatch(search.lower()) else ""
    if after is not None:
        params["after_time"], params["after_seq"] = after
    # One row per (commit, ref). The join's order is the database's business: the page is
    # put back in the listing's order here (a sort of the page, never of the history), and
    # each commit's refs sorted as _with_refs sorts them, whatever the collation.
    found: dict[str, tuple[Any, list[str]]] = {}
    for row in db.execute(statement, params):
        entry = found.setdefault(row.sha, (row, []))
        if row.ref is not None:
            entry[1].append(row.ref)
    pages = sorted(
        found.values(), key=lambda entry: (entry[0].commit_time, entry[0].seq), reverse=True
    )
    more = len(pages) > limit
    pages = pages[:limit]
    next_cursor = None
    if more and pages:
        last = pages[-1][0]
        next_cursor = encode_cursor(f"t.{last.commit_time}.{last.seq}")
    commits = [_commit_info(row, tuple(sorted(refs))) for row, refs in pages]
    return CommitPage(commits, next_cursor)


def _ref_page(session: Session, connection_id: str, found: list[Any], limit: int) -> CommitPage:
    more = len(found) > limit
    rows = found[:limit]
    next_cursor = encode_cursor(f"s.{rows[-1].sha}") if more and rows else None
    return CommitPage(_with_refs(session, connection_id, rows), next_cursor)


def _matching_in_order(session: Session, filters: list[Any], shas: Sequence[str]) -> list[Any]:
    if not shas:
        return []
    rows = {
        row.sha: row
        for row in session.execute(select(*_COLUMNS).where(*filters, Commit.sha.in_(shas)))
    }
    return [rows[sha] for sha in shas if sha in rows]


# -- shared -----------------------------------------------------------------------------------


def _filters(connection_id: str, search: str | None, include_hidden: bool) -> list[Any]:
    filters: list[Any] = [Commit.connection_id == connection_id]
    if not include_hidden:
        filters.append(Commit.hidden.is_(False))
    searched = _search_text(search)
    if searched is not None:
        pattern = "%" + _escape_like(searched) + "%"
        matches: list[ColumnElement[bool]] = [Commit.subject.ilike(pattern, escape="\\")]
        if _HEX.fullmatch(searched.lower()):
            matches.append(Commit.sha.startswith(searched.lower(), autoescape=True))
        filters.append(or_(*matches))
    return filters


def _search_text(search: str | None) -> str | None:
    """The text searched for (stripped), ``None`` for no search; ``search_invalid`` if empty
    or too long."""
    if search is None:
        return None
    text = search.strip()
    if not text or len(text) > MAX_SEARCH_LENGTH:
        raise ValidationError(
            "search_invalid",
            f"the search text must be 1 to {MAX_SEARCH_LENGTH} characters",
            "search for part of a commit subject or the start of a SHA",
        )
    return text


def _with_refs(session: Session, connection_id: str, rows: Sequence[Any]) -> list[CommitInfo]:
    shas = [row.sha for row in rows]
    names: dict[str, list[str]] = {}
    if shas:
        # Sorted here, not by the query: an ORDER BY name makes SQLite walk every ref of the
        # connection by name (thousands of tags) instead of looking these commits up in
        # ix_refs_commit.
        for commit_sha, name in session.execute(
            select(Ref.commit_sha, Ref.name).where(
                Ref.connection_id == connection_id, Ref.commit_sha.in_(shas)
            )
        ):
            names.setdefault(commit_sha, []).append(name)
        for listed in names.values():
            listed.sort()
    return [_commit_info(row, tuple(names.get(row.sha, ()))) for row in rows]


def _commit_info(row: Any, refs: tuple[str, ...]) -> CommitInfo:
    return CommitInfo(
        sha=row.sha,
        parents=tuple(row.parents.split()),
        author_name=row.author_name,
        author_email=row.author_email,
        author_time=_utc(row.author_time),
        commit_time=_utc(row.commit_time),
        subject=row.subject,
        hidden=bool(row.hidden),
        refs=refs,
    )


def _resolve_sha(session: Session, connection_id: str, text: str) -> str:
    prefix = text.strip().lower()
    if not _HEX.fullmatch(prefix):
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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _utc(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # a commit dated beyond what Python holds
        return datetime.max.replace(tzinfo=UTC) if seconds > 0 else datetime.min.replace(tzinfo=UTC)
