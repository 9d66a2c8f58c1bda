"""Create execution (in process): the commit dropdown newest first without hidden commits,
narrowed to a branch, the picked commit's details, its errors beside the control, 404 for a
stranger — on a project fetched from the embedded SSH host."""

from __future__ import annotations

import re

import pytest

from repolink.app import Repolink
from repolink.settings import Settings
from repolink.store import Store
from support.accountskit import make_account
from support.platformkit import HostedRepos
from support.webcommits import connect_to_app
from support.webkit import signed_in_pages

PAGE = "/ui/projects/acme/executions/new"
_OPTION = re.compile(r'<option value="([0-9a-f]{40})"')


@pytest.fixture
def connected(app: Repolink, settings: Settings, store: Store, hosted: HostedRepos) -> Repolink:
    owner = make_account(app, "owner")
    make_account(app, "stranger")
    app.access.create_project(owner.principal, "Acme", slug="acme")
    connect_to_app(app, settings, store, hosted, "acme")
    return app


def test_the_dropdown_lists_commits_newest_first_without_hidden_ones(
    connected: Repolink, hosted: HostedRepos
) -> None:
    everything = hosted.app.host_commits("main")
    connected.commits.hide_commits("acme", [everything[1]])
    with signed_in_pages(connected, "owner") as pages:
        page = pages.get(PAGE)
    assert page.status_code == 200
    assert _OPTION.findall(page.text) == [everything[0], *everything[2:]]
    assert '<label for="commit">Commit</label>' in page.text


def test_a_branch_narrows_the_dropdown(connected: Repolink, hosted: HostedRepos) -> None:
    with signed_in_pages(connected, "owner") as pages:
        page = pages.get(PAGE + "?ref=feature").text
    assert _OPTION.findall(page) == hosted.app.host_commits("feature")
    assert '<option value="refs/heads/feature" selected>feature</option>' in page


def test_the_picked_commit_shows_its_details(connected: Repolink, hosted: HostedRepos) -> None:
    tagged = hosted.app.host_commits("v1.0")[0]
    commit = connected.commits.get_commit("acme", tagged)
    with signed_in_pages(connected, "owner") as pages:
        page = pages.get(f"{PAGE}?commit={tagged[:12]}").text
        newest = pages.get(PAGE).text
    details = page[page.index('id="picked"') :]
    assert f'id="picked-sha">{tagged}</code>' in details
    assert commit.subject in details and commit.author_email in details
    assert "v1.0" in details[details.index('id="picked-refs"') :]
    assert re.search(rf'<option value="{tagged}"[^>]*selected', page)
    # Nothing picked yet: the newest commit is the one shown.
    assert f'id="picked-sha">{hosted.app.host_commits("main")[0]}</code>' in newest


def test_errors_are_shown_beside_their_control(connected: Repolink) -> None:
    with signed_in_pages(connected, "owner") as pages:
        unknown = pages.get(f"{PAGE}?commit={'f' * 40}")
        no_branch = pages.get(f"{PAGE}?ref=no-such-branch")
    assert unknown.status_code == 404 and 'id="commit-error"' in unknown.text
    assert "commit_not_found" in unknown.text and "Fix:" in unknown.text
    assert no_branch.status_code == 404 and 'id="ref-error"' in no_branch.text


def test_a_stranger_gets_404(connected: Repolink) -> None:
    with signed_in_pages(connected, "stranger") as pages:
        response = pages.get(PAGE)
    assert response.status_code == 404 and "project_not_found" in response.text


def test_a_project_without_a_repository_has_nothing_to_pick(app: Repolink) -> None:
    owner = make_account(app, "owner")
    app.access.create_project(owner.principal, "Bare", slug="bare")
    with signed_in_pages(app, "owner") as pages:
        response = pages.get("/ui/projects/bare/executions/new")
    assert response.status_code == 200 and "no repository yet" in response.text
    assert '<select id="commit"' not in response.text
