"""Manage commits and the Create execution dialog in a real browser (issue 12), driven by
clicks and typing: the commits newest first, narrowed by a branch and by a search; a commit
hidden on Manage commits is gone from the dialog's dropdown, listed again with "Show hidden
commits", and unhidden; a commit pushed with git over the server's own SSH host appears on the
open page without a reload; picking a commit in the dropdown shows its details. Set-up (the
hosted repository, the project connected to it) goes through the APIs and git."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page

if TYPE_CHECKING:
    from playwright.sync_api import Page

NAME, SLUG, WORKSPACE = "Commits flow", "commits-flow", "commits-flow"
BRANCH = "topic"


@dataclass
class Flow:
    api: httpx.Client
    pusher: flowkit.Pusher

    def shas(self, **params: Any) -> list[str]:
        """The API's first page of the project's commits (newest first)."""
        page = flowkit.ok(self.api.get(f"/api/v1/projects/{SLUG}/commits", params=params))
        return [item["sha"] for item in page["items"]]

    def fetched(self) -> None:
        done = flowkit.ok(self.api.post(f"/api/v1/projects/{SLUG}/fetch", params={"wait": "true"}))
        assert done["errors"] == [], done


@pytest.fixture(scope="module")
def flow(web_server: WebServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    root: Path = tmp_path_factory.mktemp("commits-flow")
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        pusher, _ = flowkit.hosted_repository(
            api, web_server.service, root, workspace=WORKSPACE, slug=SLUG, commits=4
        )
        # A branch of its own with one commit main does not have.
        git = pusher.client
        for args in (["checkout", "-qb", BRANCH], ["commit", "-qm", "topic work", "--allow-empty"]):
            assert git.git(*args, cwd=pusher.work).returncode == 0
        pushed = git.git("push", git.url(pusher.path), BRANCH, cwd=pusher.work)
        assert pushed.returncode == 0, pushed.stderr
        assert git.git("checkout", "-q", "main", cwd=pusher.work).returncode == 0
        flowkit.connect_project(
            api,
            web_server.service,
            web_server.service.ssh_port or 0,
            name=NAME,
            workspace=WORKSPACE,
            slug=SLUG,
        )
        found = Flow(api, pusher)
        found.fetched()
        yield found


def listed(page: Page) -> list[str]:
    shas: list[str] = page.locator("#commit-rows tr[data-sha]").evaluate_all(
        "rows => rows.map(row => row.getAttribute('data-sha'))"
    )
    return shas


def dropdown(page: Page) -> list[str]:
    values: list[str] = (
        page.get_by_label("Commit", exact=True)
        .locator("option")
        .evaluate_all("options => options.map(option => option.value)")
    )
    return values


def open_commits(page: Page) -> None:
    page.goto(paths.project(SLUG))
    page.get_by_role("link", name="Commits", exact=True).click()
    page.get_by_role("heading", name="Commits", exact=True).wait_for()


def filter_by(page: Page, *, ref: str = "", search: str = "", hidden: bool = False) -> None:
    page.get_by_label("Branch or tag").select_option(label=ref or "All branches and tags")
    page.get_by_label("Search").fill(search)
    page.get_by_label("Show hidden commits").set_checked(hidden)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()


def test_commits_newest_first_narrowed_by_branch_and_search(admin_page: Page, flow: Flow) -> None:
    open_commits(admin_page)
    everything = flow.shas()
    assert listed(admin_page) == everything and len(everything) >= 5
    check_page(admin_page, "commits")

    filter_by(admin_page, ref=BRANCH)
    on_branch = flow.shas(ref=BRANCH)
    assert listed(admin_page) == on_branch and len(on_branch) < len(everything) + 1
    assert "topic work" in admin_page.locator("#commit-rows").inner_text()

    filter_by(admin_page, search="topic work")
    only = listed(admin_page)
    assert len(only) == 1 and only == flow.shas(search="topic work")
    filter_by(admin_page, search=only[0][:10])
    assert listed(admin_page) == only


def test_hidden_commit_leaves_the_dropdown_until_unhidden(admin_page: Page, flow: Flow) -> None:
    target = flow.shas()[1]
    open_commits(admin_page)
    row = admin_page.locator(f'tr[data-sha="{target}"]')
    row.get_by_role("button", name="Hide commit").click()
    admin_page.get_by_role("status").filter(has_text="is hidden").wait_for()
    assert target not in listed(admin_page)

    admin_page.get_by_role("link", name="Create execution").first.click()
    admin_page.get_by_role("heading", name="Create execution").wait_for()
    assert target not in dropdown(admin_page) and flow.shas()[0] in dropdown(admin_page)

    open_commits(admin_page)
    filter_by(admin_page, hidden=True)
    assert target in listed(admin_page)
    assert "hidden" in row.inner_text()
    row.get_by_role("button", name="Unhide commit").click()
    admin_page.get_by_role("status").filter(has_text="shown again").wait_for()

    admin_page.get_by_role("link", name="Create execution").first.click()
    assert target in dropdown(admin_page)


def test_a_pushed_commit_appears_without_a_reload(admin_page: Page, flow: Flow) -> None:
    open_commits(admin_page)
    before = listed(admin_page)
    # A mark on this document: a reload would make a new one without it.
    admin_page.evaluate("() => { window.stillTheSamePage = true; }")

    new = flow.pusher.commit("pushed while the page is open")
    flow.pusher.push()

    admin_page.locator(f'#commit-rows tr[data-sha="{new}"]').wait_for()
    assert admin_page.evaluate("() => window.stillTheSamePage === true")
    assert listed(admin_page)[0] == new and listed(admin_page)[1:] == before
    assert admin_page.locator("#commits-live").inner_text() == "1 new commit"


def test_the_dropdown_shows_commits_and_the_picked_ones_details(
    admin_page: Page, flow: Flow
) -> None:
    admin_page.goto(paths.project(SLUG, "executions", "new"))
    assert dropdown(admin_page) == flow.shas()
    picked = flow.shas()[-1]
    commit = flowkit.ok(flow.api.get(f"/api/v1/projects/{SLUG}/commits/{picked}"))
    admin_page.get_by_label("Commit", exact=True).select_option(picked)
    assert admin_page.locator("#picked-sha").inner_text() == picked
    assert admin_page.locator("#picked-subject").inner_text() == commit["subject"]
    assert commit["author_name"] in admin_page.locator("#picked-author").inner_text()
    check_page(admin_page, "create-execution")

    admin_page.get_by_label("Branch or tag").select_option(label=BRANCH)
    admin_page.get_by_role("button", name="Show this branch's commits").click()
    admin_page.wait_for_load_state()
    assert dropdown(admin_page) == flow.shas(ref=BRANCH)
