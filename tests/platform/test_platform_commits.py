"""The commit picker on a fetched repository: order, refs, search, pages, hide and unhide."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event

from repolink.errors import NotFound, ValidationError
from repolink.git import mirrors
from repolink.hints import command_hint
from repolink.platform.commit_cursors import encode_cursor
from repolink.platform.commits import CommitPage, CommitService
from repolink.settings import Settings
from repolink.store import Store
from support.platformkit import HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases

PROJECT = "picker"


@dataclass
class Indexed:
    platform: Platform
    hosted: HostedRepos

    def page(self, **kwargs: Any) -> CommitPage:
        return self.platform.app.commits.list_commits(PROJECT, **kwargs)

    def all_pages(self, **kwargs: Any) -> list[list[str]]:
        pages: list[list[str]] = []
        cursor = None
        while True:
            page = self.page(cursor=cursor, **kwargs)
            pages.append([commit.sha for commit in page.commits])
            if page.next_cursor is None:
                return pages
            cursor = page.next_cursor


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory, hosted: HostedRepos, database_backend: str
) -> Iterator[Indexed]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("picker") / "platform")
    with Store.open(settings) as store:
        platform = Platform(settings, store, hosted.host)
        platform.trust_host()
        outcome = platform.connect(PROJECT, hosted.app.url(), granted_key(hosted.host, "app", "p"))
        assert outcome.error is None
        yield Indexed(platform, hosted)


def test_all_commits_newest_first(indexed: Indexed) -> None:
    page = indexed.page(limit=100)
    # The history is linear (every branch and tag is on main): git's order is the answer.
    assert [commit.sha for commit in page.commits] == indexed.hosted.app.host_commits("main")
    assert page.next_cursor is None
    first = page.commits[0]
    assert first.refs == ("refs/heads/main",)
    assert first.author_name == "Test Author" and first.author_email == "author@example.com"
    assert first.parents == (page.commits[1].sha,)
    assert first.subject == "commit 11"
    assert page.commits[-1].parents == ()


def test_pages_chain_through_cursors_without_gaps(indexed: Indexed) -> None:
    pages = indexed.all_pages(limit=5)
    everything = indexed.hosted.app.host_commits("main")

    assert [len(page) for page in pages] == [5, 5, len(everything) - 10]
    assert [sha for page in pages for sha in page] == everything


@pytest.mark.parametrize("ref", ["feature", "refs/heads/feature", "v1.0", "v1.1"])
def test_one_ref_lists_what_that_ref_reaches(indexed: Indexed, ref: str) -> None:
    expected = indexed.hosted.app.host_commits(
        ref.removeprefix("refs/heads/") + ("^{commit}" if ref.startswith("v") else "")
    )
    pages = indexed.all_pages(ref=ref, limit=4)

    assert [sha for page in pages for sha in page] == expected
    assert all(len(page) == 4 for page in pages[:-1])


def test_search_by_subject_text_and_sha_prefix(indexed: Indexed) -> None:
    subjects = [commit.subject for commit in indexed.page(search="COMMIT 1").commits]
    assert subjects == ["commit 11", "commit 10", "commit 1"]

    target = indexed.hosted.app.host_commits("main")[4]
    assert [commit.sha for commit in indexed.page(search=target[:8]).commits] == [target]
    # LIKE wildcards are text, not patterns.
    assert indexed.page(search="%").commits == []
    assert indexed.page(search="commit_1").commits == []


def test_hide_and_unhide(indexed: Indexed) -> None:
    main = indexed.hosted.app.host_commits("main")
    tip, middle = main[0], main[5]
    hidden = indexed.platform.app.commits.hide_commits(PROJECT, [tip[:10], middle])
    assert hidden == [tip, middle]

    shown = [commit.sha for commit in indexed.page(limit=100).commits]
    assert tip not in shown and middle not in shown
    assert len(shown) == len(main) - 2
    everything = indexed.page(limit=100, include_hidden=True).commits
    assert {commit.sha for commit in everything if commit.hidden} == {tip, middle}
    by_ref = [commit.sha for commit in indexed.page(ref="main", limit=100).commits]
    assert tip not in by_ref
    # refs still show every branch with its tip, hidden or not.
    refs = {ref.short_name: ref for ref in indexed.platform.app.commits.list_refs(PROJECT)}
    assert refs["main"].commit_sha == tip and refs["main"].hidden

    assert indexed.platform.app.commits.unhide_commits(PROJECT, [tip, middle]) == [tip, middle]
    assert [commit.sha for commit in indexed.page(limit=100).commits] == main


def test_hide_refuses_unknown_ambiguous_and_malformed_shas(indexed: Indexed) -> None:
    commits = indexed.platform.app.commits
    with pytest.raises(NotFound) as missing:
        commits.hide_commits(PROJECT, ["0" * 40])
    assert missing.value.code == "commit_not_found"
    with pytest.raises(ValidationError) as malformed:
        commits.hide_commits(PROJECT, ["not-a-sha"])
    assert malformed.value.code == "commit_sha_invalid"


def test_bad_cursor_ref_and_limit_are_named(indexed: Indexed) -> None:
    with pytest.raises(ValidationError) as cursor:
        indexed.page(cursor="bm90IGEgY3Vyc29y")
    assert cursor.value.code == "cursor_invalid"
    # Positions no commit has, which would overflow the query on PostgreSQL.
    for text in (f"t.1.{2**31}", f"t.{2**63}.1", "t.1." + "9" * 5000):
        with pytest.raises(ValidationError) as cursor:
            indexed.page(cursor=encode_cursor(text))
        assert cursor.value.code == "cursor_invalid"
    with pytest.raises(NotFound) as ref:
        indexed.page(ref="no-such-branch")
    assert ref.value.code == "ref_not_found"
    with pytest.raises(ValidationError) as limit:
        indexed.page(limit=0)
    assert limit.value.code == "limit_invalid"
    # A cursor of the all-refs listing is not one of a ref's listing.
    page = indexed.page(limit=2)
    with pytest.raises(ValidationError):
        indexed.page(ref="main", cursor=page.next_cursor)


def test_one_ref_without_its_mirror_names_the_missing_mirror_and_the_fix(
    indexed: Indexed,
) -> None:
    connection_id = indexed.platform.app.connections.connection_info(PROJECT).id
    path = mirrors.mirror_path(indexed.platform.settings, connection_id)
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)  # as a first clone that failed after its commits were indexed leaves it
    try:
        with pytest.raises(NotFound) as missing:
            indexed.page(ref="main")
        assert missing.value.code == "mirror_missing"
        # The service's hint names no command; the CLI's names its own.
        assert missing.value.hint == "fetch the project again"
        assert missing.value.context == {"project": PROJECT}
        assert command_hint(missing.value) == f"fetch the project again: repolink fetch {PROJECT}"
        assert indexed.page(limit=3).commits  # the index itself still lists every ref
    finally:
        aside.rename(path)


@pytest.mark.sqlite_only("SQLite's query plan (bench/serve.py measures PostgreSQL)")
def test_the_first_page_reads_the_listing_index_in_order(indexed: Indexed) -> None:
    """No sort of the whole history: the first page is the index read backwards."""
    statements: list[tuple[str, Any]] = []
    engine = indexed.platform.store.engine

    def remember(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if "FROM commits" in statement and "ORDER BY" in statement:
            statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        indexed.page(limit=50)
        indexed.page(limit=50, cursor=indexed.page(limit=3).next_cursor)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert len(statements) >= 2
    with engine.connect() as connection:
        for statement, params in statements:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            details = " ".join(str(row[-1]) for row in plan)
            assert "ix_commits_listing" in details
            assert "TEMP B-TREE" not in details


def test_a_page_and_its_refs_are_two_statements(indexed: Indexed) -> None:
    """The project's connection, then the page joined with the refs of its commits: no query
    per commit, none for the refs apart."""
    statements: list[str] = []
    engine = indexed.platform.store.engine

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    try:
        page = indexed.page(limit=50)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert len(statements) == 2, statements
    assert "refs/heads/main" in page.commits[0].refs


def test_project_without_connection_is_named(indexed: Indexed) -> None:
    indexed.platform.project("lonely")
    with pytest.raises(NotFound) as caught:
        indexed.platform.app.commits.list_commits("lonely")
    assert caught.value.code == "connection_not_found"
    assert caught.value.hint == "connect the project to a repository first"
    assert "repolink repo connect lonely" in command_hint(caught.value)


def test_one_commit_by_sha_or_prefix_hidden_or_not(indexed: Indexed) -> None:
    commits = indexed.platform.app.commits
    head = indexed.hosted.app.host_commits("main")[0]

    assert commits.get_commit(PROJECT, head).refs == ("refs/heads/main",)
    assert commits.get_commit(PROJECT, head[:10].upper()).sha == head
    commits.hide_commits(PROJECT, [head])
    try:
        assert commits.get_commit(PROJECT, head).hidden
    finally:
        commits.unhide_commits(PROJECT, [head])
    with pytest.raises(NotFound) as missing:
        commits.get_commit(PROJECT, "0" * 40)
    assert missing.value.code == "commit_not_found"
    with pytest.raises(ValidationError) as malformed:
        commits.get_commit(PROJECT, "main")
    assert malformed.value.code == "commit_sha_invalid"


def test_the_commits_a_fetch_added_are_its_index_range_newest_first(indexed: Indexed) -> None:
    commits = indexed.platform.app.commits
    everything = indexed.hosted.app.host_commits("main")
    # The first fetch indexed the whole history, parents first: seq 1 is the root commit.
    first_fetch = commits.added_commits(PROJECT, 1, len(everything))

    assert [commit.sha for commit in first_fetch] == everything
    assert [c.sha for c in commits.added_commits(PROJECT, 1, len(everything), limit=3)] == (
        everything[:3]
    )
    assert [c.sha for c in commits.added_commits(PROJECT, 1, 2)] == everything[-2:]
    assert commits.added_commits(PROJECT, len(everything) + 1, len(everything) + 5) == []


def _every_page(service: CommitService, **kwargs: Any) -> list[CommitPage]:
    pages = [service.list_commits(PROJECT, limit=3, **kwargs)]
    while pages[-1].next_cursor is not None:
        pages.append(service.list_commits(PROJECT, limit=3, cursor=pages[-1].next_cursor, **kwargs))
    return pages


@pytest.mark.sqlite_only("the embedded file read through sqlite3")
def test_the_pages_are_the_same_through_sqlite3_and_through_sqlalchemy(indexed: Indexed) -> None:
    """`repolink commits` reads the page's statements on stdlib sqlite3, the API on the pool's
    Core connections (repolink.platform.commit_pages): the same pages, cursors included."""
    settings, runner = indexed.platform.settings, indexed.platform.runner
    main = indexed.hosted.app.host_commits("main")
    commits = indexed.platform.app.commits
    commits.hide_commits(PROJECT, [main[1]])
    try:
        with Store.open(settings) as native, Store.open(settings, native_sqlite=False) as core:
            plain = CommitService(settings, native, runner=runner)
            through_core = CommitService(settings, core, runner=runner)
            for case in (
                {},
                {"include_hidden": True},
                {"search": "Commit 1"},
                {"search": main[3][:9]},
                {"ref": "feature"},
                {"ref": "refs/tags/v1.1", "include_hidden": True},
                {"ref": "main", "search": "commit"},
            ):
                pages = _every_page(plain, **case)
                assert pages == _every_page(through_core, **case), case
                listed = [commit for page in pages for commit in page.commits]
                assert listed, case
                assert (main[1] in {c.sha for c in listed}) == bool(case.get("include_hidden"))
            everything = [
                c for page in _every_page(plain, include_hidden=True) for c in page.commits
            ]
            assert len(everything) == len(main) and any(c.hidden for c in everything)
            assert any(c.refs for c in everything)
            assert native._engine is None  # every one of its reads went through sqlite3
    finally:
        commits.unhide_commits(PROJECT, [main[1]])
