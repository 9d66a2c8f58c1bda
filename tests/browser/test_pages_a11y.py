"""Every page ``repolink serve`` has, in a real browser: axe-core finds no serious or critical
violation, and each is screenshotted at laptop and phone widths.

The pages are read off the service app's routes, so a new page is covered the moment it is
registered: every GET route of the web package (``repolink.web``), and the API docs pages;
each is visited as the site admin (the sign-in page: signed out).
A path parameter is filled from :data:`VALUES` with what :func:`tour` made on the server (a
project connected to a hosted repository of the same slug, with commits); a page whose
parameter has no value here fails ``test_every_page_parameter_has_a_value`` — add its value;
a GET route that answers no page (a download, an event stream) goes into :data:`NOT_PAGES`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI

from repolink.app import Repolink
from repolink.http.service_app import create_service_app
from repolink.settings import Settings
from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Pages outside the web package: the API's own documentation.
DOCS_PAGES = ("/api/docs", "/host/api/2.0/docs")
# GET routes of the web package that answer no page (a download, an event stream, a
# redirect-only action), by path, each with why.
NOT_PAGES: dict[str, str] = {
    f"{paths.STATIC}/{{name}}": "the pages' own style sheet and script",
    f"{paths.PREFIX}/projects/{{slug}}/commits/version.json": "the commit index's version, "
    "which Manage commits' script polls",
    f"{paths.PREFIX}/projects/{{slug}}/settings/repository/public-key": "the deploy key's "
    "repolink-<project>.pub download",
    f"{paths.PREFIX}/projects/{{slug}}/settings/repository/state": "the connection's state, "
    "which the Repository page's script polls",
}
# Pages a person sees before signing in (the others are visited as the site admin).
SIGNED_OUT_PAGES = frozenset({paths.SIGNIN})
# Pages whose answer is not 200 by design.
STATUSES = {f"{paths.PREFIX}/{{rest:path}}": 404}
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


def get_routes(app: FastAPI) -> Iterator[tuple[str, Any]]:
    """(path, endpoint) of every GET route of ``app``, those of included routers too."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept as such
        routes: Iterable[Any] = app.routes
    else:
        routes = iter_route_contexts(app.routes)
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None) or ()
        if path and "GET" in methods:
            yield path, getattr(route, "endpoint", None)


def page_routes() -> list[PageRoute]:
    """Every GET route of the service app that answers a page, in the app's order."""
    with tempfile.TemporaryDirectory() as data_dir, Repolink(Settings(data_dir=data_dir)) as app:
        service_app = create_service_app(app, ssh_url_base="ssh://git@127.0.0.1:2222")
        routes = list(get_routes(service_app))
    found: dict[str, PageRoute] = {}
    for path, endpoint in routes:
        module = getattr(endpoint, "__module__", "") or ""
        if path in NOT_PAGES:
            continue
        if path in DOCS_PAGES or module.split(".")[:2] == WEB_PACKAGE.split("."):
            found.setdefault(path, PageRoute(path, tuple(_PARAMETER.findall(path))))
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
        # The project's deploy key is the hosted repository's access key.
        deploy_keys = api.get(f"{flowkit.HOST_API}/repositories/{WORKSPACE}/{SLUG}/deploy-keys")
        [access_key] = flowkit.ok(deploy_keys)["values"]
    yield Tour(values=values(commits, access_key_id=str(access_key["id"])))


def values(commits: list[str], *, access_key_id: str = "1") -> dict[str, str]:
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
        "access_key_id": access_key_id,
        # The pages' catch-all: an address with no page answers the not-found page.
        "rest": "no-such-page",
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
    found = [route.path for route in PAGES]
    assert {*DOCS_PAGES, paths.SIGNIN, paths.HOME, f"{paths.HOME}/{{slug}}"} <= set(found), found


@pytest.mark.parametrize("route", PAGES, ids=[route.path for route in PAGES])
def test_page_is_accessible_at_both_widths(
    request: pytest.FixtureRequest, tour: Tour, route: PageRoute
) -> None:
    if any(name not in tour.values for name in route.parameters):
        pytest.fail(f"{route.path}: no value for its parameters {route.parameters}")
    page: Page = request.getfixturevalue("page" if route.path in SIGNED_OUT_PAGES else "admin_page")
    address = filled(route, tour.values)
    answer = page.goto(address)
    assert answer is not None, route.path
    assert answer.status == STATUSES.get(route.path, 200), f"{address}: {answer.status}"
    assert answer.headers.get("content-type", "").startswith("text/html"), answer.headers
    # Not sent to sign in: the page itself was shown.
    assert route.path in SIGNED_OUT_PAGES or paths.SIGNIN not in page.url, page.url
    check_page(page, route.name)
