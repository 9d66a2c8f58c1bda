"""Manage commits (in process), on a project fetched from the embedded SSH host: newest first,
a branch filter, search, pages, hide and unhide by members only, hidden ones on request, the
version the page's script polls, and every error a visitor can cause shown on the page."""

from __future__ import annotations

import re

import pytest

from repolink.app import Repolink
from repolink.auth.principal import Role
from repolink.settings import Settings
from repolink.store import Store
from repolink.web import commits as commit_pages
from support.accountskit import make_account
from support.platformkit import HostedRepos
from support.webcommits import connect_to_app
from support.webkit import PageClient, signed_in_pages

PAGE = "/ui/projects/acme/commits"
_ROW = re.compile(r'<tr data-sha="([0-9a-f]{40})"')


@pytest.fixture
def connected(app: Repolink, settings: Settings, store: Store, hosted: HostedRepos) -> Repolink:
    owner = make_account(app, "owner")
    for name in ("dev", "watcher", "stranger"):
        make_account(app, name)
    app.access.create_project(owner.principal, "Acme", slug="acme")
    app.access.set_member(owner.principal, "acme", "dev", Role.MEMBER)
    app.access.set_member(owner.principal, "acme", "watcher", Role.VIEWER)
    connect_to_app(app, settings, store, hosted, "acme")
    return app


def listed(pages: PageClient, query: str = "") -> list[str]:
    response = pages.get(f"{PAGE}{query}")
    assert response.status_code == 200, response.text
    return _ROW.findall(response.text)


def test_newest_first_with_author_refs_and_time(connected: Repolink, hosted: HostedRepos) -> None:
    with signed_in_pages(connected, "watcher") as pages:
        response = pages.get(PAGE)
    assert _ROW.findall(response.text) == hosted.app.host_commits("main")
    head = connected.commits.get_commit("acme", hosted.app.host_commits("main")[0])
    assert head.subject in response.text and head.author_name in response.text
    assert '<span class="badge">main</span>' in response.text
    assert "<time datetime=" in response.text


def test_branch_filter_and_search_narrow_the_list(connected: Repolink, hosted: HostedRepos) -> None:
    feature = hosted.app.host_commits("feature")
    oldest = connected.commits.get_commit("acme", feature[-1])
    with signed_in_pages(connected, "watcher") as pages:
        page = pages.get(PAGE).text
        assert '<option value="refs/heads/feature">feature</option>' in page
        assert listed(pages, "?ref=refs/heads/feature") == feature
        assert listed(pages, "?ref=feature") == feature
        assert listed(pages, "?search=" + oldest.sha[:12]) == [oldest.sha]
        by_subject = listed(pages, "?search=" + oldest.subject)
    assert oldest.sha in by_subject and len(by_subject) < len(hosted.app.host_commits("main"))


def test_pages_continue_by_the_cursor(
    connected: Repolink, hosted: HostedRepos, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_pages, "PAGE_SIZE", 5)
    seen: list[str] = []
    with signed_in_pages(connected, "watcher") as pages:
        path = PAGE
        while True:
            html = pages.get(path).text
            seen += _ROW.findall(html)
            found = re.search(r'<a href="([^"]+)" rel="next">Older commits</a>', html)
            if found is None:
                break
            path = found.group(1).replace("&amp;", "&")
            assert "Newest commits" in pages.get(path).text
    assert seen == hosted.app.host_commits("main")


def test_a_member_hides_a_commit_and_shows_it_again(
    connected: Repolink, hosted: HostedRepos
) -> None:
    sha = hosted.app.host_commits("main")[1]
    with signed_in_pages(connected, "dev") as pages:
        hidden = pages.post(f"{PAGE}/{sha}/hide", {"back": PAGE + "?search=x"}, token_from=PAGE)
        assert hidden.status_code == 303 and hidden.headers["location"] == PAGE + "?search=x"
        assert "is hidden" in pages.get(PAGE + "?search=x").text
        assert sha not in listed(pages)
        with_hidden = pages.get(PAGE + "?hidden=1").text
        assert sha in _ROW.findall(with_hidden)
        assert f'aria-label="Unhide commit {sha[:7]}' in with_hidden
        shown = pages.post(f"{PAGE}/{sha}/unhide", {"back": PAGE}, token_from=PAGE)
        assert shown.status_code == 303
        assert sha in listed(pages)
    with signed_in_pages(connected, "owner") as pages:
        audit = pages.get("/ui/projects/acme/settings/audit").text
    assert audit.index("commit.unhide") < audit.index("commit.hide") and sha in audit


def test_a_viewer_has_no_hide_button_and_is_refused(
    connected: Repolink, hosted: HostedRepos
) -> None:
    sha = hosted.app.host_commits("main")[0]
    with signed_in_pages(connected, "watcher") as pages:
        assert "Hide commit" not in pages.get(PAGE).text
        refused = pages.post(f"{PAGE}/{sha}/hide", {"back": PAGE}, token_from=PAGE)
        assert refused.status_code == 403 and "role_required" in refused.text
    assert sha in [c.sha for c in connected.commits.list_commits("acme").commits]


def test_a_stranger_gets_404_for_the_page_the_version_and_hiding(
    connected: Repolink, hosted: HostedRepos
) -> None:
    sha = hosted.app.host_commits("main")[0]
    with signed_in_pages(connected, "stranger") as pages:
        for path in (PAGE, f"{PAGE}/version.json"):
            response = pages.get(path)
            assert response.status_code == 404 and "project_not_found" in response.text
        refused = pages.post(f"{PAGE}/{sha}/hide", {}, token_from="/ui/projects")
        assert refused.status_code == 404


def test_the_version_moves_when_the_index_changes(connected: Repolink, hosted: HostedRepos) -> None:
    with signed_in_pages(connected, "dev") as pages:
        page = pages.get(PAGE).text
        before = pages.get(f"{PAGE}/version.json").json()["version"]
        assert f'data-version="{before}"' in page
        assert 'data-version-url="/ui/projects/acme/commits/version.json"' in page
        pages.post(f"{PAGE}/{hosted.app.host_commits('main')[2]}/hide", {}, token_from=PAGE)
        after = pages.get(f"{PAGE}/version.json").json()["version"]
    assert before and after and after != before


def test_errors_are_shown_beside_their_control(connected: Repolink) -> None:
    with signed_in_pages(connected, "dev") as pages:
        missing_ref = pages.get(PAGE + "?ref=no-such-branch")
        assert missing_ref.status_code == 404
        assert 'id="ref-error"' in missing_ref.text and "ref_not_found" in missing_ref.text
        bad_cursor = pages.get(PAGE + "?cursor=not-a-cursor")
        assert bad_cursor.status_code == 400 and 'id="_form-error"' in bad_cursor.text
        unknown = pages.post(f"{PAGE}/{'0' * 40}/hide", {"back": PAGE}, token_from=PAGE)
        assert unknown.status_code == 404
        assert "commit_not_found" in unknown.text and "Fix:" in unknown.text


def test_the_hide_form_returns_only_to_this_page(connected: Repolink, hosted: HostedRepos) -> None:
    sha = hosted.app.host_commits("main")[3]
    with signed_in_pages(connected, "dev") as pages:
        for back in ("https://evil.example/", "//evil.example/x", "/ui/projects/other/commits"):
            answer = pages.post(f"{PAGE}/{sha}/unhide", {"back": back}, token_from=PAGE)
            assert answer.headers["location"] == PAGE, back


def test_a_project_without_a_repository_says_so(app: Repolink) -> None:
    owner = make_account(app, "owner")
    app.access.create_project(owner.principal, "Bare", slug="bare")
    with signed_in_pages(app, "owner") as pages:
        response = pages.get("/ui/projects/bare/commits")
        assert response.status_code == 200 and "no repository yet" in response.text
        assert pages.get("/ui/projects/bare/commits/version.json").json() == {"version": ""}
