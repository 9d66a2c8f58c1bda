"""The commit index of a connection: brought up to date with its mirror after each fetch.

Only what changed is read from git:

- commits reachable from the new tips and not from the previously indexed ones
  (``git rev-list --topo-order --reverse --boundary <new tips> --not <indexed tips>``),
  streamed line by line and inserted in large batches — never the whole history in memory;
- commits that no ref reaches any more (a branch deleted or force-pushed) are dropped
  (``git rev-list <dropped tips> --not <current tips>``). A dropped tip that the first walk
  met as a boundary commit (the old tip of a branch that moved forward: the parent of a new
  commit) is still reachable, and so is everything behind it: when every dropped tip is such
  a one — the usual refresh — that second git process is not run at all.

The index compares the mirror's refs with the ``refs`` table, not with the remote, so a run
interrupted after the fetch but before the index is completed by the next run even when the
fetch itself has nothing to do. A caller that has just read the mirror's ref targets under the
fetch lock (a refresh that skipped the fetch) passes them, and the index then starts no git
process when nothing changed. Inserts ignore commits already present, so a batch committed
by an interrupted run is harmless. The ``refs`` table is written last: it is the mark of what
has been indexed.

Transactions: every git process here starts with none open (the stream's process first, then
the writes), and the database never waits on git: a batch of :data:`BATCH_SIZE` commits is
read from the local ``rev-list`` first, then written in a transaction of its own — a first
index of 50 000 commits commits ten times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Insert, Table, delete, func, insert, select
from sqlalchemy.orm import Session

from repolink.git.environment import git_argv
from repolink.git.mirrors import read_mirror_refs
from repolink.git.refs import GitRef
from repolink.git.runner import GitRunner
from repolink.git.stream import LineStream
from repolink.store import Store
from repolink.store.models.platform import REF_BRANCH, REF_TAG, Commit, Ref

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
# One line per commit: rev-list ends each with "\n"; no field can hold one (git folds the
# subject onto one line), and NUL separates the fields. %m is "-" on a boundary commit (one
# the walk excluded; listed for what it says about the dropped tips, never inserted) and ">"
# on the others.
COMMIT_FORMAT = "%m%H%x00%P%x00%an%x00%ae%x00%at%x00%ct%x00%s"
_FIELDS = 7
# PostgreSQL's text refuses NUL where SQLite keeps it; the index stores the same text on both.
# NUL separates the fields, so only the subject (the rest of the line) could hold one: git
# itself stops %s, %an and %ae at a NUL, and the fetch's fsck refuses a commit holding one
# (nulInCommit, nulInHeader) before it reaches the mirror.
STORED_NUL = "\ufffd"
_BOUNDARY_MARK = ord("-")
# What the index keeps of a pushed commit's text: a 10 MB subject was stored verbatim, and
# every commit page carried it. The whole message stays in the mirror.
MAX_SUBJECT_CHARS = 1000
MAX_PERSON_CHARS = 256
# Bound parameters per statement stay far below every database's limit.
_NAMES_PER_STATEMENT = 500

IndexProgress = Callable[[int], None]


@dataclass(frozen=True)
class IndexResult:
    new_commits: int
    removed_commits: int
    refs: int
    changed: bool


def index_mirror(
    store: Store,
    connection_id: str,
    mirror: Path,
    *,
    env: Mapping[str, str],
    timeout: float,
    runner: GitRunner,
    on_progress: IndexProgress | None = None,
    batch_size: int = BATCH_SIZE,
    targets: Mapping[str, str] | None = None,
) -> IndexResult:
    """Bring the index of ``connection_id`` in line with ``mirror`` (hold the mirror's lock).

    ``targets``: the mirror's refs and what they name
    (:func:`repolink.git.mirrors.read_ref_targets`) when the caller read them under this
    same lock hold and nothing has written to the mirror since: when the index holds exactly
    these, nothing is read from git.
    """
    with store.session() as session:
        indexed = _indexed_refs(session, connection_id)
    if targets is not None:
        indexed_targets = {name: target for name, (target, _) in indexed.items()}
        # The names are checked only when the plain comparison fails: it is the usual refresh.
        if (
            targets == indexed_targets
            or {name: target for name, target in targets.items() if _storable_ref_name(name)}
            == indexed_targets
        ):
            return IndexResult(0, 0, len(indexed), changed=False)
    current = {
        name: ref
        for name, ref in read_mirror_refs(mirror, env=env, runner=runner).items()
        if ref.commit is not None and _indexable(connection_id, name)
    }
    if {name: (ref.target, ref.commit) for name, ref in current.items()} == indexed:
        return IndexResult(0, 0, len(current), changed=False)

    current_tips = {ref.commit for ref in current.values() if ref.commit is not None}
    indexed_tips = {commit for _target, commit in indexed.values()}
    dropped = indexed_tips - current_tips
    added = 0
    new_tips = current_tips - indexed_tips
    if new_tips:
        added, boundary = _add_new(
            store,
            connection_id,
            mirror,
            new_tips,
            indexed_tips,
            env=env,
            timeout=timeout,
            runner=runner,
            on_progress=on_progress,
            batch_size=batch_size,
        )
        # A boundary commit is the parent of a commit just added, so a current tip reaches it.
        dropped -= boundary
    removed = 0
    if dropped:
        removed = _remove_unreachable(
            store,
            connection_id,
            mirror,
            dropped,
            current_tips,
            env=env,
            timeout=timeout,
            runner=runner,
        )
    with store.session() as session:
        _write_refs(session, connection_id, current, indexed)
    log.info(
        "indexed connection %s: %d new commits, %d dropped, %d refs",
        connection_id,
        added,
        removed,
        len(current),
    )
    return IndexResult(added, removed, len(current), changed=True)


def _storable_ref_name(name: str) -> bool:
    """Whether a ref name as :mod:`repolink.git.refs` decoded it is text a database stores.

    git takes any byte but a few ASCII ones in a ref name; one that is not UTF-8 comes
    decoded with surrogate escapes, which neither SQLite's nor PostgreSQL's driver encodes
    (the whole fetch failed on it). Such a ref stays out of the index, on either database:
    replacing its bytes would store a name git cannot resolve and that two refs may share."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _indexable(connection_id: str, name: str) -> bool:
    if _storable_ref_name(name):
        return True
    log.warning(
        "connection %s: ref %s is not UTF-8 and stays out of the index",
        connection_id,
        ascii(name),
    )
    return False


def _indexed_refs(session: Session, connection_id: str) -> dict[str, tuple[str, str]]:
    rows = session.execute(
        select(Ref.name, Ref.target, Ref.commit_sha).where(Ref.connection_id == connection_id)
    )
    return {name: (target, commit) for name, target, commit in rows}


def _rev_list_input(include: Iterable[str], exclude: Iterable[str]) -> bytes:
    # "^sha" rather than a "--not" line: git reads options on stdin only since 2.42.
    lines = sorted(include) + [f"^{sha}" for sha in sorted(exclude)]
    return ("\n".join(lines) + "\n").encode("ascii")


def _add_new(
    store: Store,
    connection_id: str,
    mirror: Path,
    new_tips: set[str],
    indexed_tips: set[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    runner: GitRunner,
    on_progress: IndexProgress | None,
    batch_size: int,
) -> tuple[int, set[str]]:
    """Insert the commits ``new_tips`` reach and ``indexed_tips`` do not; return how many
    were inserted and the boundary commits of that walk (indexed commits it stopped at)."""
    argv = git_argv(
        "rev-list",
        "--topo-order",
        "--reverse",
        "--boundary",
        "--no-commit-header",
        f"--format={COMMIT_FORMAT}",
        "--ignore-missing",
        "--stdin",
        git_dir=mirror,
    )
    with store.session() as session:
        seq = session.scalar(
            select(func.coalesce(func.max(Commit.seq), 0)).where(
                Commit.connection_id == connection_id
            )
        )
    next_seq = int(seq or 0) + 1
    added = 0
    boundary: set[str] = set()
    with LineStream(
        argv,
        env=env,
        timeout=timeout,
        runner=runner,
        input=_rev_list_input(new_tips, indexed_tips),
        batch_lines=batch_size,
    ) as lines:
        for batch in lines:
            rows = _commit_rows(batch, connection_id, next_seq, boundary)
            if rows:
                next_seq += len(rows)
                with store.session() as session:
                    added += _insert_commits(session, rows)
                if on_progress is not None:
                    on_progress(added)
    if lines.result is not None:
        lines.result.check("listing the new commits of the mirror")
    return added, boundary


# The order of a row tuple; every column is a plain string or integer, so rows go to the
# driver as they are (no per-value type processing: most of the cost on a large history).
_ROW_COLUMNS = (
    "connection_id",
    "sha",
    "seq",
    "parents",
    "author_name",
    "author_email",
    "author_time",
    "commit_time",
    "subject",
)
Row = tuple[str, str, int, str, str, str, int, int, str]


def _commit_rows(
    lines: Sequence[bytes], connection_id: str, first_seq: int, boundary: set[str]
) -> list[Row]:
    """The rows of one batch of rev-list lines, numbered from ``first_seq``; the shas of
    boundary lines go to ``boundary``. This loop runs once per commit of a whole history:
    one decode and one split per line (NUL is ASCII, so decoding the line at once replaces
    exactly what decoding each field would)."""
    rows: list[Row] = []
    seq = first_seq
    for line in lines:
        if not line:
            continue
        text = line.decode("utf-8", "replace")
        fields = text[1:].split("\0", _FIELDS - 1)
        if len(fields) != _FIELDS:
            log.warning("skipped a commit line git wrote in an unexpected form")
            continue
        if line[0] == _BOUNDARY_MARK:
            boundary.add(fields[0])
            continue
        sha, parents, name, email, author_time, commit_time, subject = fields
        try:
            authored = int(author_time)
            committed = int(commit_time)
        except ValueError:
            log.warning("skipped commit %s: its times cannot be read", sha)
            continue
        subject = subject.replace("\0", STORED_NUL)
        # Length checks only: the cutting is rare, and this loop runs once per commit.
        if len(subject) > MAX_SUBJECT_CHARS:
            subject = _capped(subject, MAX_SUBJECT_CHARS)
        if len(name) > MAX_PERSON_CHARS or len(email) > MAX_PERSON_CHARS:
            name, email = _capped(name, MAX_PERSON_CHARS), _capped(email, MAX_PERSON_CHARS)
        rows.append(
            (
                connection_id,
                sha,
                seq,
                parents,
                name,
                email,
                authored,
                committed,
                subject,
            )
        )
        seq += 1
    return rows


def _capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# PostgreSQL: the whole batch as one statement of one array per column. An executemany there
# is a statement per row, and the index_generation trigger runs once per statement (its
# transition table holding one row): 50 000 commits indexed took as many updates of the
# connection's row, at a thousand commits a second.
_INSERT_COMMITS_POSTGRESQL = (
    f"INSERT INTO commits ({', '.join(_ROW_COLUMNS)}) SELECT * FROM unnest("  # noqa: S608
    "%s::varchar[], %s::varchar[], %s::integer[], %s::text[], %s::text[], %s::text[], "
    "%s::bigint[], %s::bigint[], %s::text[]) ON CONFLICT (connection_id, sha) DO NOTHING"
)


def _insert_commits(session: Session, rows: Sequence[Row]) -> int:
    """``rows`` in one executemany through the driver (one statement on PostgreSQL); commits
    already indexed are skipped."""
    connection = session.connection()
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        result = connection.exec_driver_sql(_INSERT_COMMITS_POSTGRESQL, columns)
        return max(result.rowcount, 0)
    compiled = _insert_ignoring_duplicates(connection.dialect.name).compile(
        dialect=connection.dialect, column_keys=list(_ROW_COLUMNS)
    )
    params: Sequence[Any]
    if compiled.positional:
        order = [_ROW_COLUMNS.index(name) for name in compiled.positiontup or ()]
        if order == list(range(len(_ROW_COLUMNS))):
            params = rows  # already in the statement's order (SQLite): no copy of each row
        else:
            params = [tuple(row[index] for index in order) for row in rows]
    else:
        params = [dict(zip(_ROW_COLUMNS, row, strict=True)) for row in rows]
    result = connection.exec_driver_sql(compiled.string, params)
    count = result.rowcount
    return count if isinstance(count, int) and count >= 0 else len(rows)


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    # Each dialect imported only when in use: on SQLite, PostgreSQL's costs a command ~50 ms.
    table = cast(Table, Commit.__table__)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing(index_elements=["connection_id", "sha"])
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(
            index_elements=["connection_id", "sha"]
        )
    return insert(table)


def _remove_unreachable(
    store: Store,
    connection_id: str,
    mirror: Path,
    dropped: set[str],
    current_tips: set[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    runner: GitRunner,
) -> int:
    argv = git_argv("rev-list", "--ignore-missing", "--stdin", git_dir=mirror)
    removed = 0
    with LineStream(
        argv,
        env=env,
        timeout=timeout,
        runner=runner,
        input=_rev_list_input(dropped, current_tips),
    ) as lines:
        for batch in lines:
            shas = [_text(line) for line in batch if line]
            if not shas:
                continue
            with store.session() as session:
                result = session.execute(
                    delete(Commit).where(
                        Commit.connection_id == connection_id, Commit.sha.in_(shas)
                    )
                )
                removed += max(getattr(result, "rowcount", 0) or 0, 0)
    if lines.result is not None:
        lines.result.check("listing the commits no ref reaches any more")
    return removed


def _write_refs(
    session: Session,
    connection_id: str,
    current: Mapping[str, GitRef],
    indexed: Mapping[str, tuple[str, str]],
) -> None:
    """Make the ``refs`` table say ``current``, touching only the refs that changed: a refresh
    that moved one branch of a repository with thousands of tags writes one row."""
    changed = [
        ref for name, ref in current.items() if indexed.get(name) != (ref.target, ref.commit)
    ]
    changed_names = {ref.name for ref in changed}
    stale = sorted(name for name in indexed if name not in current or name in changed_names)
    for start in range(0, len(stale), _NAMES_PER_STATEMENT):
        session.execute(
            delete(Ref).where(
                Ref.connection_id == connection_id,
                Ref.name.in_(stale[start : start + _NAMES_PER_STATEMENT]),
            )
        )
    rows = [
        {
            "connection_id": connection_id,
            "name": ref.name,
            "kind": REF_BRANCH if ref.name.startswith("refs/heads/") else REF_TAG,
            "target": ref.target,
            "commit_sha": ref.commit,
        }
        for ref in changed
    ]
    if rows and session.get_bind().dialect.name == "postgresql":
        # A statement per batch, not per row: the index_generation trigger runs per statement.
        for start in range(0, len(rows), _NAMES_PER_STATEMENT):
            session.execute(insert(Ref).values(rows[start : start + _NAMES_PER_STATEMENT]))
    elif rows:
        session.execute(insert(Ref), rows)
