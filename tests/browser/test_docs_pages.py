"""The API's pages in a real browser: the docs pages of ``repolink serve`` (platform API and
the built-in host's API) pass axe-core and are screenshotted at laptop and phone widths."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from support.browserkit import check_accessibility, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.mark.parametrize(
    ("path", "heading", "name"),
    [
        ("/api/docs", "repolink API", "api-docs"),
        ("/host/api/2.0/docs", "repolink host API", "host-api-docs"),
    ],
)
def test_a_docs_page_is_accessible(page: Page, path: str, heading: str, name: str) -> None:
    answer = page.goto(path)
    assert answer is not None and answer.status == 200
    assert heading in page.get_by_role("heading", level=1).inner_text()
    assert page.get_by_role("link", name="OpenAPI document").is_visible()
    check_accessibility(page)
    screenshot(page, name)
