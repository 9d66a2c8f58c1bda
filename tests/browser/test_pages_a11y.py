"""Every page ``repolink serve`` has, in a real browser: no serious or critical axe-core
violation, it fits a phone, its keyboard focus shows, and it is screenshotted at laptop and
phone widths (``browserkit.check_page``).

The pages come from :mod:`support.pagekit` (read off the service app's routes: a new page is
covered the moment it is registered); each is visited as the site admin (the sign-in page:
signed out), its parameters filled with the session's ``tour`` (a project connected to a
hosted repository of the same slug). A page whose parameter has no value fails
``test_every_page_parameter_has_a_value`` — add it to ``pagekit.values``; a route answering
JSON or a download is skipped, saying so; one that never ends (an event stream) goes into
``pagekit.NOT_PAGES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from repolink.web import paths
from support.browserkit import check_page
from support.pagekit import DOCS_PAGES, PAGES, SIGNED_OUT_PAGES, STATUSES, PageRoute, Tour, values

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_every_page_parameter_has_a_value() -> None:
    known = values(["0" * 40])
    unknown = {
        route.path: [name for name in route.parameters if name not in known]
        for route in PAGES
        if any(name not in known for name in route.parameters)
    }
    assert unknown == {}, "give these parameters a value in support/pagekit.py values()"


def test_the_pages_are_discovered() -> None:
    found = [route.path for route in PAGES]
    assert {*DOCS_PAGES, paths.SIGNIN, paths.HOME, f"{paths.HOME}/{{slug}}"} <= set(found), found


@pytest.mark.parametrize("route", PAGES, ids=[route.path for route in PAGES])
def test_page_is_accessible_at_both_widths(
    request: pytest.FixtureRequest, tour: Tour, route: PageRoute
) -> None:
    if any(name not in tour.values for name in route.parameters):
        pytest.fail(f"{route.path}: no value for its parameters {route.parameters}")
    page: Page = request.getfixturevalue("page" if route.path in SIGNED_OUT_PAGES else "admin_page")
    address = route.address(tour.values)
    # A route of the pages that answers JSON (a script's) or a download is no page to check.
    probe = page.request.get(address)
    kind = probe.headers.get("content-type", "")
    disposition = probe.headers.get("content-disposition", "")
    if not kind.startswith("text/html") or disposition.startswith("attachment"):
        pytest.skip(f"{address} is no page: {kind} {disposition}".strip())
    answer = page.goto(address)
    assert answer is not None, route.path
    assert answer.status == STATUSES.get(route.path, 200), f"{address}: {answer.status}"
    assert answer.headers.get("content-type", "").startswith("text/html"), answer.headers
    # Not sent to sign in: the page itself was shown.
    assert route.path in SIGNED_OUT_PAGES or paths.SIGNIN not in page.url, page.url
    check_page(page, route.name)
