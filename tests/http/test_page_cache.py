"""The commit picker's page cache: a first page is answered again only while the project's
index version stays the same — a commit hidden, indexed or moved by a ref, by this app or by
another process on the same database, is in the very next answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from repolink.app import Repolink
from repolink.http.page_cache import PageCache
from repolink.settings import Settings
from repolink.store import Store
from support.apikit import DEV, WATCHER, PlatformAPI, platform_api
from support.platformkit import HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases

P = "/projects/cached"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, database_backend: str) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("page-cache") / "platform")


@pytest.fixture(scope="module")
def api(settings: Settings, hosted: HostedRepos) -> Iterator[PlatformAPI]:
    with Store.open(settings) as store, Repolink(settings, store=store) as app:
        Platform(settings, store, hosted.host).trust_host()
        for kit in platform_api(app):
            kit.create("cached")
            app.connections.connect(
                "cached", hosted.app.url(), key=granted_key(hosted.host, "app", "page-cache")
            )
            yield kit


def _first_page(api: PlatformAPI, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.ok(WATCHER, "GET", f"{P}/commits", params=params)["items"]
    return items


def _shas(api: PlatformAPI, **params: Any) -> list[str]:
    return [commit["sha"] for commit in _first_page(api, **params)]


def test_a_hidden_commit_leaves_the_very_next_first_page(
    api: PlatformAPI, hosted: HostedRepos
) -> None:
    target = hosted.app.host_commits("main")[1]
    assert target in _shas(api) and target in _shas(api)  # the second one from the cache

    api.ok(DEV, "POST", f"{P}/commits/{target}/hide")
    try:
        assert target not in _shas(api)
        # The same page with hidden commits is another entry, and shows it hidden.
        shown = {c["sha"]: c["hidden"] for c in _first_page(api, include_hidden="true")}
        assert shown[target] is True
    finally:
        api.ok(DEV, "POST", f"{P}/commits/{target}/unhide")
    assert target in _shas(api)


def test_a_newly_indexed_commit_is_on_the_very_next_first_page(
    api: PlatformAPI, hosted: HostedRepos
) -> None:
    before = _shas(api, limit=5)
    assert _shas(api, limit=5) == before

    new = hosted.app.commit("page cache: a new commit")
    api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})

    assert _shas(api, limit=5) == [new, *before[:4]]


def test_a_ref_moved_onto_a_listed_commit_shows_next_time(
    api: PlatformAPI, hosted: HostedRepos, database_backend: str
) -> None:
    listed = _first_page(api)
    older = listed[3]
    branch = f"refs/heads/cache-{database_backend}"  # the host is shared by both runs
    assert branch not in older["refs"]

    hosted.app.push(f"{older['sha']}:{branch}")
    api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})

    refs = {c["sha"]: c["refs"] for c in _first_page(api)}
    assert branch in refs[older["sha"]]


def test_a_change_by_another_process_is_in_the_very_next_answer(
    api: PlatformAPI, settings: Settings, hosted: HostedRepos
) -> None:
    target = hosted.app.host_commits("main")[2]
    assert target in _shas(api) and target in _shas(api)

    # Another application on the same database, as the CLI or a second server would be:
    # nothing of the API's process hears of its change but the database.
    with Store.open(settings) as store, Repolink(settings, store=store) as other:
        other.commits.hide_commits("cached", [target])
        try:
            assert target not in _shas(api)
        finally:
            other.commits.unhide_commits("cached", [target])
    assert target in _shas(api)


def test_the_index_version_moves_with_every_change_and_only_then(
    api: PlatformAPI, hosted: HostedRepos
) -> None:
    commits = api.app.commits
    version = commits.index_version("cached")
    assert version is not None and commits.index_version("cached") == version

    target = hosted.app.host_commits("main")[0]
    commits.hide_commits("cached", [target])
    hidden = commits.index_version("cached")
    commits.unhide_commits("cached", [target])
    shown = commits.index_version("cached")
    assert len({version, hidden, shown}) == 3

    # A fetch that finds nothing new changes nothing.
    api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})
    assert commits.index_version("cached") == shown


def test_an_unconnected_project_has_no_index_version(api: PlatformAPI) -> None:
    api.create("bare")
    assert api.app.commits.index_version("bare") is None
    assert api.app.commits.index_version("no-such-project") is None


def test_the_cache_keeps_the_most_recently_used_bodies_within_its_bytes() -> None:
    cache = PageCache(max_bytes=40)
    cache.put("a", b"1" * 10)
    cache.put("b", b"2" * 10)
    cache.put("c", b"3" * 10)
    assert cache.get("a") == b"1" * 10  # now the most recent
    cache.put("d", b"4" * 10)
    cache.put("e", b"5" * 10)

    assert cache.held_bytes == 40 and len(cache) == 4
    assert cache.get("b") is None
    assert cache.get("a") == b"1" * 10 and cache.get("e") == b"5" * 10
    cache.put("e", b"6" * 5)  # replaced: counted once
    assert cache.held_bytes == 35


def test_a_body_over_a_quarter_of_the_bound_is_not_kept() -> None:
    cache = PageCache(max_bytes=40)
    cache.put("big", b"x" * 11)
    assert cache.get("big") is None and cache.held_bytes == 0
