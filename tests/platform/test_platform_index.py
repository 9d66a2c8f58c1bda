"""The commit index after a refresh: only what changed is written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from support.platformkit import HostedRepos, Platform, granted_key

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
