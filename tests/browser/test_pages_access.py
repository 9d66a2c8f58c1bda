"""Who sees which page (issue 12; DESIGN.md §5: a project's data is invisible to
non-members), for every page of :mod:`support.pagekit` — a page is swept the moment its route
is registered:

- signed out, every page but the sign-in page and the API docs sends the browser to sign in
  (or, for what a script reads, refuses with 401 or 404), and shows nothing of the project;
- a stranger — signed in, a member of no project — gets, on every page of a project (JSON and
  downloads too), a 404, and on a page the very page a project which does not exist gets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repolink.web import paths
from support.browserkit import WebServer, sign_in
from support.pagekit import (
    CATCH_ALL,
    DOCS_PAGES,
    PAGES,
    PROJECT_NAME,
    SIGNED_OUT_PAGES,
    SLUG,
    Tour,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

STRANGER, STRANGER_PASSWORD = "page-stranger", "the page stranger's passphrase"
PROJECT_PAGES = [route for route in PAGES if route.path.startswith(f"{paths.HOME}/{{slug}}")]
SIGNED_IN_PAGES = [
    route
    for route in PAGES
    if route.path not in SIGNED_OUT_PAGES
    and route.path not in DOCS_PAGES
    and route.path != CATCH_ALL
]


def test_signed_out_every_page_asks_to_sign_in(
    page: Page, web_server: WebServer, tour: Tour
) -> None:
    assert SIGNED_IN_PAGES and PROJECT_PAGES
    shown = {}
    for route in SIGNED_IN_PAGES:
        address = route.address(tour.values)
        answer = page.request.get(address)  # redirects followed
        where = answer.url.removeprefix(web_server.url)
        refused = where.startswith(paths.SIGNIN) or answer.status in (401, 404)
        if not refused or PROJECT_NAME in answer.text():
            shown[address] = (answer.status, where)
    assert shown == {}, "pages shown to a browser that is not signed in"


def test_a_stranger_gets_404_on_every_page_of_a_project(
    page: Page, web_server: WebServer, tour: Tour
) -> None:
    web_server.create_user(STRANGER, STRANGER_PASSWORD)
    sign_in(page, STRANGER, STRANGER_PASSWORD)
    missing = page.goto(paths.project("no-such-project"))
    assert missing is not None and missing.status == 404
    not_found = page.locator("main").inner_text()

    seen = {}
    for route in PROJECT_PAGES:
        address = route.address(tour.values)
        answer = page.request.get(address)
        if answer.status != 404 or PROJECT_NAME in answer.text():
            seen[address] = answer.status
        elif answer.headers.get("content-type", "").startswith("text/html"):
            page.goto(address)
            if page.locator("main").inner_text() != not_found:
                seen[address] = "a 404 page of its own"
    assert seen == {}, f"pages of project {SLUG} a stranger was not refused with 404"
