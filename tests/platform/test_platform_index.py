"""The commit index: after a refresh only what changed is written; text from a remote that a
database cannot store (a NUL, a ref name that is not UTF-8) is stored alike on both."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from repolink.platform.index import STORED_NUL, _commit_rows, _insert_commits
from repolink.store.models.platform import Commit
from support.platformkit import WORKSPACE, HostedRepo, HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases


@pytest.fixture
def ref_writes(platform: Platform) -> Iterator[list[tuple[str, int]]]:
    """Each statement that writes the ``refs`` table: (verb, rows it was given)."""
    seen: list[tuple[str, int]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        verb = statement.split(None, 1)[0].upper()
        if verb in ("INSERT", "DELETE", "UPDATE") and " refs" in statement:
            seen.append((verb, len(parameters) if many else 1))

    engine = platform.store.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_refresh_rewrites_only_the_refs_that_moved(
    platform: Platform, hosted: HostedRepos, ref_writes: list[tuple[str, int]]
) -> None:
    repo = hosted.app
    platform.connect("refs-diff", repo.url(), granted_key(hosted.host, "app", "refs-diff"))
    before = {ref.name: ref.commit_sha for ref in platform.app.commits.list_refs("refs-diff")}
    assert len(before) == 4  # main, feature, two tags
    ref_writes.clear()

    sha = repo.commit("moves main only")
    assert platform.fetch("refs-diff").new_commits == 1

    # main's row replaced; feature and both tags untouched.
    assert ref_writes == [("DELETE", 1), ("INSERT", 1)]
    after = {ref.name: ref.commit_sha for ref in platform.app.commits.list_refs("refs-diff")}
    assert after == {**before, "refs/heads/main": sha}


def test_postgresql_writes_a_batch_of_commits_in_one_statement(
    platform: Platform, hosted: HostedRepos, database_backend: str
) -> None:
    if database_backend != "postgresql":
        pytest.skip("SQLite's index_generation triggers run per row; PostgreSQL's per statement")
    platform.connect("one-batch", hosted.app.url(), granted_key(hosted.host, "app", "one-batch"))
    commits = len(hosted.app.host_commits("main"))
    version = platform.app.commits.index_version("one-batch")
    assert version is not None
    # One statement for the commits and one for the refs: a statement per row moved it by
    # as many as there are commits and refs (and took a thousand commits a second).
    assert int(version.split(".")[1]) <= 2 < commits


def _hosted_copy_of_app(hosted: HostedRepos, slug: str) -> HostedRepo:
    """A new hosted repository ``team/<slug>`` holding the app's main branch (the module's
    ``hosted`` serves both database runs: each makes its own)."""
    hosted.host.service.create_repository(WORKSPACE, slug)
    repo = HostedRepo(hosted.host, slug, hosted.app.client, hosted.app.source)
    repo.push("main:main")
    return repo


def _git(git_dir: Path, *args: str | bytes, input: bytes | None = None) -> str:
    argv = [
        b"git",
        f"--git-dir={git_dir}".encode(),
        *(a if isinstance(a, bytes) else a.encode() for a in args),
    ]
    done = subprocess.run(argv, input=input, capture_output=True, check=True)
    return done.stdout.decode().strip()


def test_refs_whose_names_are_not_utf8_stay_out_of_the_index_on_both_databases(
    platform: Platform, hosted: HostedRepos, database_backend: str
) -> None:
    """git takes any byte above ASCII in a ref name; both database drivers refused the
    surrogate-escaped name, and the whole fetch failed (UnicodeEncodeError, a 500 through
    the API)."""
    slug = f"latin-refs-{database_backend}"
    repo = _hosted_copy_of_app(hosted, slug)
    main = _git(repo.path, "rev-parse", "main")
    _git(repo.path, "update-ref", b"refs/heads/caf\xe9", "main~1")
    _git(repo.path, "tag", "-a", "-m", "latin", b"v\xe9", "main~2")
    _git(repo.path, "tag", "v2", "main")

    outcome = platform.connect(slug, repo.url(), granted_key(hosted.host, slug, slug))

    assert outcome.error is None
    refs = {ref.name: ref.commit_sha for ref in platform.app.commits.list_refs(slug)}
    assert refs == {"refs/heads/main": main, "refs/tags/v2": main}
    assert outcome.connection.commits == len(repo.host_commits("main"))
    again = platform.fetch(slug)
    assert (again.new_commits, again.refs) == (0, 2)


def test_a_commit_holding_a_nul_is_refused_by_the_fetchs_fsck_alike_on_both_databases(
    platform: Platform, hosted: HostedRepos, database_backend: str
) -> None:
    """Git keeps a hand-written commit with a NUL in its author and its message, and the
    host serves it; every fetch checks objects with fsck, which refuses it (``nulInHeader``,
    ``nulInCommit``): the connection fails with ``invalid_object`` on either database and
    nothing of it reaches a text column."""
    slug = f"nul-commit-{database_backend}"
    repo = _hosted_copy_of_app(hosted, slug)
    tree = _git(repo.path, "rev-parse", "main^{tree}")
    parent = _git(repo.path, "rev-parse", "main")
    raw = (
        f"tree {tree}\nparent {parent}\n".encode()
        + b"author Ev\0il <e\0vil@example.com> 1700000000 +0000\n"
        + b"committer C <c@example.com> 1700000000 +0000\n\nsub\0ject\n\nbody\0text\n"
    )
    crafted = _git(
        repo.path, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=raw
    )
    _git(repo.path, "update-ref", "refs/heads/main", crafted)

    outcome = platform.connect(slug, repo.url(), granted_key(hosted.host, slug, slug))

    assert outcome.error is not None
    assert outcome.error.code == "invalid_object"
    assert "nulInHeader" in outcome.error.message
    assert "\0" not in outcome.error.message
    assert outcome.connection.state == "failed"
    assert outcome.connection.commits == 0


def test_a_nul_in_a_subject_git_wrote_is_stored_as_a_replacement_character_on_both_databases(
    platform: Platform, hosted: HostedRepos, database_backend: str
) -> None:
    """The one place the index decides what it stores for a NUL (git stops its fields at one
    today, and fsck refuses such commits; a subject is the rest of the line): PostgreSQL's
    text refuses it, SQLite would store it, and both must hold the same."""
    slug = f"nul-subject-{database_backend}"
    outcome = platform.connect(slug, hosted.other.url(), granted_key(hosted.host, "other", slug))
    assert outcome.error is None
    sha = "ab" * 20
    # rev-list's line: the fields NUL-separated, a NUL inside the subject (the last one).
    fields = (sha, "", "A U Thor", "a@example.com", "1700000000", "1700000001", "sub\0ject")
    line = (">" + "\0".join(fields)).encode()

    rows = _commit_rows([line], outcome.connection.id, 1000, set())
    with platform.store.session() as session:
        assert _insert_commits(session, rows) == 1
    with platform.store.session() as session:
        stored = session.scalar(
            select(Commit.subject).where(
                Commit.connection_id == outcome.connection.id, Commit.sha == sha
            )
        )
    assert stored == f"sub{STORED_NUL}ject" == "sub\ufffdject"
