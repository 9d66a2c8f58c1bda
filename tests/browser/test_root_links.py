"""``/`` of ``repolink serve`` in a browser: it answers JSON naming the service's documents
(not a page: Chromium shows it in its own JSON viewer, which is no page of ours to check);
every link of it that a browser opens as a page — the API docs, and the web pages (signed out:
the sign-in page) — is reached and passes axe-core. (``test_pages_a11y`` screenshots each of
those pages and checks its fit on a phone.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repolink.web import paths
from support.browserkit import WebServer, check_accessibility

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_the_root_links_lead_to_accessible_pages(page: Page, web_server: WebServer) -> None:
    answer = page.goto("/")
    assert answer is not None and answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")
    links = {name: link["href"] for name, link in answer.json()["links"].items()}
    assert links["docs"] == "/api/docs", links

    opened = {}
    for name, href in links.items():
        reached = page.goto(href)
        assert reached is not None and reached.status == 200, (name, href)
        if reached.headers["content-type"].startswith("text/html"):
            check_accessibility(page)
            opened[name] = page.url.removeprefix(web_server.url)
    assert opened["docs"] == "/api/docs", opened
    assert opened["pages"].startswith(paths.SIGNIN), opened  # not signed in: asked to first
    # The docs page is the API's: its title, and a link to the whole description.
    page.goto(links["docs"])
    assert "repolink API" in page.get_by_role("heading", level=1).inner_text()
    assert page.get_by_role("link", name="OpenAPI document").is_visible()
