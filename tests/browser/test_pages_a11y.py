"""Every page ``repolink serve`` has, in a real browser: axe-core finds no serious or critical
violation, and each is screenshotted at laptop and phone widths.

The pages are read off the service app's routes, so a new page is covered the moment it is
registered: every GET route of the web package (``repolink.web``), and the API docs pages.
A path parameter is filled from :data:`VALUES` with what :func:`tour` made on the server (a
project connected to a hosted repository of the same slug, with commits); a page whose
parameter has no value here fails ``test_every_page_parameter_has_a_value`` — add its value;
a GET route that answers no page (a download, an event stream) goes into :data:`NOT_PAGES`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from fastapi.routing import APIRoute

from repolink.app import Repolink
from repolink.http.service_app import create_service_app
from repolink.settings import Settings
from support import flowkit
from support.browserkit import WebServer, check_accessibility, check_fits_phone, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Pages outside the web package: the API's own documentation.
DOCS_PAGES = ("/api/docs", "/host/api/2.0/docs")
# GET routes of the web package that answer no page (a download, an event stream, a
# redirect-only action), by path, each with why.
NOT_PAGES: dict[str, str] = {}
WEB_PACKAGE = "repolink.web"
PROJECT_NAME = "A11y tour"
WORKSPACE, SLUG = "a11y", "a11y-tour"
_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]*)?}")


@dataclass(frozen=True)
class PageRoute:
    path: str
    parameters: tuple[str, ...]

    @property
    def name(self) -> str:
        """The screenshot's name: the path's words, parameters kept as their names."""
        words = re.sub(r"[^a-z0-9]+", "-", self.path.lower()).strip("-")
        return f"page-{words or 'root'}"


def page_routes() -> list[PageRoute]:
    """Every GET route of the service app that answers a page, in the app's order."""
    with tempfile.TemporaryDirectory() as data_dir, Repolink(Settings(data_dir=data_dir)) as app:
        routes = create_service_app(app, ssh_url_base="ssh://git@127.0.0.1:2222").routes
    found: dict[str, PageRoute] = {}
    for route in routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        module = getattr(route.endpoint, "__module__", "") or ""
        if route.path in NOT_PAGES:
            continue
        if route.path in DOCS_PAGES or module.split(".")[:2] == WEB_PACKAGE.split("."):
            found.setdefault(
                route.path, PageRoute(route.path, tuple(_PARAMETER.findall(route.path)))
            )
    return list(found.values())


PAGES = page_routes()


@dataclass(frozen=True)
class Tour:
    """What the pages are shown with: a project connected to a hosted repository."""

    values: dict[str, str]


@pytest.fixture(scope="module")
def tour(web_server: WebServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    root = tmp_path_factory.mktemp("a11y-tour")
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        _, commits = flowkit.hosted_repository(
            api, web_server.service, root, workspace=WORKSPACE, slug=SLUG
        )
        flowkit.connect_project(
            api,
            web_server.service,
            web_server.service.ssh_port or 0,
            name=PROJECT_NAME,
            workspace=WORKSPACE,
            slug=SLUG,
        )
        fetched = flowkit.ok(api.post(f"/api/v1/projects/{SLUG}/fetch", params={"wait": "true"}))
        assert fetched["errors"] == [], fetched
    yield Tour(values=values(commits))


def values(commits: list[str]) -> dict[str, str]:
    """A value for each path parameter a page may have, by its name. A project's slug and its
    hosted repository's slug are the same, so ``slug`` suits both kinds of page."""
    return {
        "slug": SLUG,
        "project": SLUG,
        "project_slug": SLUG,
        "workspace": WORKSPACE,
        "repo_slug": SLUG,
        "repository": SLUG,
        "sha": commits[-1],
        "commit": commits[-1],
        "username": "admin",
        "user": "admin",
    }


def filled(route: PageRoute, known: dict[str, str]) -> str:
    return _PARAMETER.sub(lambda match: known[match.group(1)], route.path)


def test_every_page_parameter_has_a_value() -> None:
    known = values(["0" * 40])
    unknown = {
        route.path: [name for name in route.parameters if name not in known]
        for route in PAGES
        if any(name not in known for name in route.parameters)
    }
    assert unknown == {}, "give these parameters a value in test_pages_a11y.values()"


def test_the_pages_are_discovered() -> None:
    paths = [route.path for route in PAGES]
    assert set(DOCS_PAGES) <= set(paths), paths


@pytest.mark.parametrize("route", PAGES, ids=[route.path for route in PAGES])
def test_page_is_accessible_at_both_widths(page: Page, tour: Tour, route: PageRoute) -> None:
    if any(name not in tour.values for name in route.parameters):
        pytest.fail(f"{route.path}: no value for its parameters {route.parameters}")
    answer = page.goto(filled(route, tour.values))
    assert answer is not None, route.path
    assert answer.status < 400, f"{route.path}: {answer.status}"
    assert answer.headers.get("content-type", "").startswith("text/html"), answer.headers
    check_accessibility(page)
    check_fits_phone(page)
    screenshot(page, route.name)
