"""The platform API's commit picker, in process, on a project fetched from the embedded SSH
host: pages, one ref, search, hidden commits, one commit, hide and unhide, refs — by every
kind of caller, and every error a client can cause."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from repolink.app import Repolink
from repolink.auth.principal import Role
from repolink.settings import Settings
from repolink.store import Store
from support.apikit import (
    CALLERS,
    DEV,
    ROOT,
    WATCHER,
    PlatformAPI,
    denial,
    may,
    platform_api,
)
from support.platformkit import HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases

P = "/projects/picker"


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, hosted: HostedRepos, database_backend: str
) -> Iterator[PlatformAPI]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("api-commits") / "platform")
    with Store.open(settings) as store, Repolink(settings, store=store) as app:
        platform = Platform(settings, store, hosted.host)
        platform.trust_host()
        for kit in platform_api(app):
            kit.create("picker")
            app.connections.connect(
                "picker", hosted.app.url(), key=granted_key(hosted.host, "app", "api-commits")
            )
            yield kit


def _error(response: Any) -> dict[str, str]:
    body = response.json()
    assert body["type"] == "error", body
    error: dict[str, str] = body["error"]
    return error


def _shas(api: PlatformAPI, **params: Any) -> list[str]:
    """Every sha of the listing, page after page."""
    shas: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = api.ok(WATCHER, "GET", f"{P}/commits", params=query)
        shas += [commit["sha"] for commit in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return shas


def test_first_page_newest_first_with_every_field(api: PlatformAPI, hosted: HostedRepos) -> None:
    page = api.ok(WATCHER, "GET", f"{P}/commits")

    everything = hosted.app.host_commits("main")
    assert [c["sha"] for c in page["items"]] == everything and page["next_cursor"] is None
    head = page["items"][0]
    assert set(head) == {
        "sha",
        "parents",
        "author_name",
        "author_email",
        "authored_at",
        "committed_at",
        "subject",
        "refs",
        "hidden",
    }
    assert head["refs"] == ["refs/heads/main"] and head["parents"] == [everything[1]]
    assert (head["author_name"], head["author_email"]) == ("Test Author", "author@example.com")
    assert head["subject"] == "commit 11" and head["hidden"] is False
    assert head["committed_at"].endswith(("Z", "+00:00"))


def test_pages_chain_through_cursors(api: PlatformAPI, hosted: HostedRepos) -> None:
    assert _shas(api, limit=5) == hosted.app.host_commits("main")
    assert _shas(api, ref="feature", limit=4) == hosted.app.host_commits("feature")


def test_search_by_subject_or_sha_prefix(api: PlatformAPI, hosted: HostedRepos) -> None:
    everything = hosted.app.host_commits("main")

    assert _shas(api, search="commit 1") == [everything[0], everything[1], everything[-2]]
    assert _shas(api, search=everything[3][:8]) == [everything[3]]


def test_hide_unhide_and_include_hidden(api: PlatformAPI, hosted: HostedRepos) -> None:
    target = hosted.app.host_commits("main")[2]

    hidden = api.ok(DEV, "POST", f"{P}/commits/{target[:10]}/hide")
    try:
        assert hidden["sha"] == target and hidden["hidden"] is True
        assert target not in _shas(api)
        assert target in _shas(api, include_hidden="true")
        assert api.ok(WATCHER, "GET", f"{P}/commits/{target}")["hidden"] is True
    finally:
        shown = api.ok(DEV, "POST", f"{P}/commits/{target}/unhide")
    assert shown["hidden"] is False and target in _shas(api)


def test_one_commit_and_the_refs(api: PlatformAPI, hosted: HostedRepos) -> None:
    head = hosted.app.host_commits("main")[0]

    commit = api.ok(WATCHER, "GET", f"{P}/commits/{head[:7]}")
    assert commit["sha"] == head

    refs = api.ok(WATCHER, "GET", f"{P}/refs")["items"]
    assert [(r["kind"], r["short_name"]) for r in refs] == [
        ("branch", "feature"),
        ("branch", "main"),
        ("tag", "v1.0"),
        ("tag", "v1.1"),
    ]
    main = refs[1]
    assert (main["name"], main["commit_sha"], main["target"]) == ("refs/heads/main", head, head)
    annotated = refs[3]
    assert annotated["target"] != annotated["commit_sha"]  # the tag object, peeled


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/commits", {"cursor": "not-a-cursor"}, 400, "cursor_invalid"),
        ("/commits", {"ref": "no-such-branch"}, 404, "ref_not_found"),
        ("/commits", {"limit": 0}, 400, "invalid_request"),
        ("/commits", {"limit": 10_000}, 400, "invalid_request"),
        ("/commits", {"search": " "}, 400, "search_invalid"),
        ("/commits", {"search": "x" * 500}, 400, "invalid_request"),
        ("/commits", {"include_hidden": "perhaps"}, 400, "invalid_request"),
        ("/commits/" + "0" * 40, {}, 404, "commit_not_found"),
        ("/commits/main", {}, 400, "commit_sha_invalid"),
        ("/commits/" + "a" * 65, {}, 400, "invalid_request"),
    ],
)
def test_errors_are_named(
    api: PlatformAPI, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    response = api.call(WATCHER, "GET", P + path, params=params)

    assert (response.status_code, _error(response)["code"]) == (status, code)


def test_hiding_an_unknown_commit_is_named(api: PlatformAPI) -> None:
    response = api.call(DEV, "POST", f"{P}/commits/{'0' * 40}/hide")

    assert (response.status_code, _error(response)["code"]) == (404, "commit_not_found")


def test_a_cursor_of_the_ref_walk_is_refused_by_the_full_listing(api: PlatformAPI) -> None:
    page = api.ok(WATCHER, "GET", f"{P}/commits", params={"ref": "main", "limit": 2})

    response = api.call(WATCHER, "GET", f"{P}/commits", params={"cursor": page["next_cursor"]})

    assert (response.status_code, _error(response)["code"]) == (400, "cursor_invalid")


def test_every_route_refuses_whoever_may_not(api: PlatformAPI, hosted: HostedRepos) -> None:
    head = hosted.app.host_commits("main")[0]
    routes: list[tuple[str, str, Role]] = [
        ("GET", "/commits", Role.VIEWER),
        ("GET", f"/commits/{head}", Role.VIEWER),
        ("POST", f"/commits/{head}/hide", Role.MEMBER),
        ("POST", f"/commits/{head}/unhide", Role.MEMBER),
        ("GET", "/refs", Role.VIEWER),
    ]
    for method, path, required in routes:
        for caller in CALLERS:
            if may(caller, required):
                continue
            response = api.call(caller, method, P + path)
            status, code = denial(caller, required)
            assert (response.status_code, _error(response)["code"]) == (status, code), (
                caller,
                path,
            )
    assert api.ok(ROOT, "GET", f"{P}/commits/{head}")["hidden"] is False
