"""The commit picker's page reads: fixed SQL texts on a :class:`~repolink.store.plain.PlainReader`.

One definition for every reader of a page: the HTTP API and the web pages (a Core connection
of the server's pool) and ``repolink commits`` (stdlib sqlite3 on the embedded file, without
importing SQLAlchemy, its ORM or pydantic — issue 10 §2). :class:`CommitService` in
:mod:`repolink.platform.commits` decides which page is read; the statements, their
parameters and the rows' shape live here.

All refs: one statement reads the page on ``ix_commits_listing`` (a keyset range in the index's
order) and the refs pointing at it on ``ix_refs_commit``, one row per (commit, ref). One ref:
the commits of a batch of ``git rev-list`` output, then the refs of the page's commits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from repolink.errors import NotFound, ValidationError
from repolink.platform.commit_cursors import encode_cursor
from repolink.store.plain import PlainReader

MAX_SEARCH_LENGTH = 200
HEX = re.compile(r"[0-9a-f]{4,64}")
_SHOWABLE_REF = re.compile(r"[A-Za-z0-9._/+@-]{1,200}")

_COLUMNS = "sha, seq, parents, author_name, author_email, author_time, commit_time, subject, hidden"

CONNECTION_OF_PROJECT = (
    "SELECT c.id FROM repository_connections c JOIN projects p ON p.id = c.project_id"
    " WHERE p.slug = :slug"
)
_REF_TIP = "SELECT commit_sha FROM refs WHERE connection_id = :connection_id AND name = :name"


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


def search_text(search: str | None) -> str | None:
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


def _filter(*, search: bool, include_hidden: bool) -> list[str]:
    """The WHERE terms of a listing on ``commits`` (parameters: ``connection_id``, with a
    search ``pattern`` and ``sha_prefix`` from :func:`_filter_params`)."""
    where = ["connection_id = :connection_id"]
    if not include_hidden:
        where.append("NOT hidden")
    if search:
        # As SQLAlchemy's ilike renders on every backend but PostgreSQL (whose ILIKE is the
        # same for what a search can hold): case-insensitive, with backslash escapes.
        where.append("(lower(subject) LIKE lower(:pattern) ESCAPE '\\' OR sha LIKE :sha_prefix)")
    return where


def _filter_params(connection_id: str, search: str | None) -> dict[str, object]:
    params: dict[str, object] = {"connection_id": connection_id}
    if search is not None:
        params["pattern"] = "%" + escape_like(search) + "%"
        # A SHA prefix only when the text could be one (hex holds no LIKE wildcard); else a
        # pattern no SHA matches.
        params["sha_prefix"] = search.lower() + "%" if HEX.fullmatch(search.lower()) else ""
    return params


@functools.cache
def _page_statement(*, search: bool, include_hidden: bool, after: bool) -> str:
    """One page of commits and the refs that point at them, in one statement: the ORM's
    statement building and row loading cost several times the query."""
    where = _filter(search=search, include_hidden=include_hidden)
    if after:
        where.append("(commit_time, seq) < (:after_time, :after_seq)")
    # Only the fixed fragments above are joined into the text; every value is bound.
    return (
        "WITH page AS ("  # noqa: S608
        f" SELECT {_COLUMNS} FROM commits"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY commit_time DESC, seq DESC LIMIT :limit)"
        " SELECT page.sha, page.seq, page.parents, page.author_name, page.author_email,"
        " page.author_time, page.commit_time, page.subject, page.hidden, refs.name AS ref"
        " FROM page LEFT JOIN refs"
        " ON refs.connection_id = :connection_id AND refs.commit_sha = page.sha"
    )


def page_all(
    db: PlainReader,
    connection_id: str,
    search: str | None,
    include_hidden: bool,
    limit: int,
    after: tuple[int, int] | None,
) -> CommitPage:
    """One page of every ref's commits, newest first by commit time (ties: the later indexed),
    continuing after the key ``after`` (commit time, seq)."""
    statement = _page_statement(
        search=search is not None, include_hidden=include_hidden, after=after is not None
    )
    params = _filter_params(connection_id, search)
    params["limit"] = limit + 1
    if after is not None:
        params["after_time"], params["after_seq"] = after
    # One row per (commit, ref). The join's order is the database's business: the page is
    # put back in the listing's order here (a sort of the page, never of the history), and
    # each commit's refs sorted, whatever the collation.
    found: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    for row in db.rows(statement, params):
        entry = found.setdefault(row["sha"], (row, []))
        if row["ref"] is not None:
            entry[1].append(row["ref"])
    pages = sorted(
        found.values(), key=lambda entry: (entry[0]["commit_time"], entry[0]["seq"]), reverse=True
    )
    more = len(pages) > limit
    pages = pages[:limit]
    next_cursor = None
    if more and pages:
        last = pages[-1][0]
        next_cursor = encode_cursor(f"t.{last['commit_time']}.{last['seq']}")
    commits = [commit_info(row, tuple(sorted(refs))) for row, refs in pages]
    return CommitPage(commits, next_cursor)


def resolve_ref(db: PlainReader, connection_id: str, ref: str) -> str:
    """The commit a branch or tag points at: ``main``, ``refs/heads/main``, ``v1.0`` …

    A branch wins over a tag of the same short name."""
    names = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    for name in names:
        commit = db.scalar(_REF_TIP, {"connection_id": connection_id, "name": name})
        if commit is not None:
            return str(commit)
    shown = f" {ref!r}" if _SHOWABLE_REF.fullmatch(ref) else ""
    raise NotFound(
        "ref_not_found",
        f"there is no branch or tag{shown}",
        "list the project's branches and tags (fetch first if it is new)",
    )


def _in_list(prefix: str, values: Sequence[str]) -> tuple[str, dict[str, object]]:
    """``(:p0, :p1 …)`` and its parameters: a list bound value by value, as SQLAlchemy's
    ``in_`` expands it, in a text any database reads."""
    names = [f"{prefix}{index}" for index in range(len(values))]
    return "(" + ", ".join(f":{name}" for name in names) + ")", dict(
        zip(names, values, strict=True)
    )


def matching_in_order(
    db: PlainReader,
    connection_id: str,
    search: str | None,
    include_hidden: bool,
    shas: Sequence[str],
) -> list[Mapping[str, Any]]:
    """The indexed commits among ``shas`` that the listing shows, in the order of ``shas``."""
    if not shas:
        return []
    where = _filter(search=search is not None, include_hidden=include_hidden)
    listed, params = _in_list("sha", shas)
    params.update(_filter_params(connection_id, search))
    statement = (
        f"SELECT {_COLUMNS} FROM commits"  # noqa: S608 (fixed fragments; values bound)
        f" WHERE {' AND '.join(where)} AND sha IN {listed}"
    )
    rows = {row["sha"]: row for row in db.rows(statement, params)}
    return [rows[sha] for sha in shas if sha in rows]


def with_refs(
    db: PlainReader, connection_id: str, rows: Sequence[Mapping[str, Any]]
) -> list[CommitInfo]:
    """The commits of ``rows`` with the names of the refs pointing at each, sorted."""
    names: dict[str, list[str]] = {}
    if rows:
        listed, params = _in_list("sha", [row["sha"] for row in rows])
        params["connection_id"] = connection_id
        # Sorted here, not by the query: an ORDER BY name makes SQLite walk every ref of the
        # connection by name (thousands of tags) instead of looking these commits up in
        # ix_refs_commit.
        for found in db.rows(
            "SELECT commit_sha, name FROM refs"  # noqa: S608 (fixed fragments; values bound)
            f" WHERE connection_id = :connection_id AND commit_sha IN {listed}",
            params,
        ):
            names.setdefault(found["commit_sha"], []).append(found["name"])
        for listed_names in names.values():
            listed_names.sort()
    return [commit_info(row, tuple(names.get(row["sha"], ()))) for row in rows]


def ref_page(
    db: PlainReader, connection_id: str, found: Sequence[Mapping[str, Any]], limit: int
) -> CommitPage:
    """A page of one ref's walk from the commits matched so far (one more than ``limit``
    when the walk goes on)."""
    more = len(found) > limit
    rows = found[:limit]
    next_cursor = encode_cursor(f"s.{rows[-1]['sha']}") if more and rows else None
    return CommitPage(with_refs(db, connection_id, rows), next_cursor)


def commit_info(row: Mapping[str, Any], refs: tuple[str, ...]) -> CommitInfo:
    return CommitInfo(
        sha=row["sha"],
        parents=tuple(row["parents"].split()),
        author_name=row["author_name"],
        author_email=row["author_email"],
        author_time=utc(row["author_time"]),
        commit_time=utc(row["commit_time"]),
        subject=row["subject"],
        hidden=bool(row["hidden"]),
        refs=refs,
    )


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def utc(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # a commit dated beyond what Python holds
        return datetime.max.replace(tzinfo=UTC) if seconds > 0 else datetime.min.replace(tzinfo=UTC)
