"""Fixtures of the browser tests (marker ``browser``, given to every test of this directory).

- ``web_server`` — one real ``repolink serve`` per test process (pytest-xdist worker), HTTP
  and SSH on port 0, on a data directory of its own, with a site admin ``admin`` whose
  password is :data:`ADMIN_PASSWORD` and the bootstrap API token :data:`ADMIN_TOKEN` (for
  set-up through the API of what is not the flow under test). Tests share it: give what you
  create a name of your own. What it prints goes to ``serve.log`` in its directory.
- ``browser`` — headless Debian Chromium, one per test module; skipped, with the reason,
  where Chromium or Playwright is missing (:func:`support.browserkit.missing`).
- ``page`` — a page of its own browser context (no cookies shared) at laptop size, with the
  server as base URL (``page.goto("/api/docs")``), signed in as nobody. A test fails when the
  server answered any of its requests with a 5xx, a script of the page threw or the console
  showed an error (a blocked script or style among them); a failing test leaves a screenshot
  under ``<output>/failures/``.
- ``admin_page`` — the same, signed in as the site admin (one sign-in per test module).
- ``tour`` — a project connected to a hosted repository with commits, on ``web_server``, and
  a value for every page's path parameters (:mod:`support.pagekit`).

Helpers are in :mod:`support.browserkit`: ``sign_in``, ``check_page`` (``check_accessibility``,
``check_fits_phone`` and ``screenshot`` in one), ``WebServer.create_user``. Pages are covered
by ``test_pages_a11y`` as soon as their route is registered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support import browserkit
from support.browserkit import WebServer
from support.pagekit import Tour, make_tour
from support.servekit import drain_output, serving_service

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Response

HERE = Path(__file__).parent
ADMIN_USER = "admin"
ADMIN_PASSWORD = "browser-tests admin passphrase"
ADMIN_TOKEN = "browser-tests-bootstrap-admin-token"
SERVE_SETTINGS = {
    "REPOLINK_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "REPOLINK_ADMIN_TOKEN": ADMIN_TOKEN,
    "REPOLINK_SHUTDOWN_GRACE": "1",
    # The tests' hosts are on loopback (the server's own SSH host among them).
    "REPOLINK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    # The report of each phase, on the item: the page fixture's teardown reads whether the
    # test failed, to keep a picture of what the browser showed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    root = tmp_path_factory.mktemp("web-server")
    with serving_service(root / "data", SERVE_SETTINGS) as service:
        log = root / "serve.log"
        drain_output(service, log)
        yield WebServer(service, root / "data", log, ADMIN_USER, ADMIN_PASSWORD, ADMIN_TOKEN)


@pytest.fixture(scope="session")
def tour(web_server: WebServer, tmp_path_factory: pytest.TempPathFactory) -> Tour:
    """What the page-wide tests show every page with (:func:`support.pagekit.make_tour`),
    made once per test process."""
    return make_tour(web_server, tmp_path_factory.mktemp("tour"))


# A module's browser, not the test process's: while Playwright's sync API is started, its
# event loop counts as running in this thread, so every later test of the same process that
# calls asyncio.run() (the CLI, the job workers, the SSH host) would fail. Ended when the
# process moves on to another module's tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = browserkit.missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = browserkit.launch(playwright)
        yield launched
        launched.close()


@contextmanager
def watched_page(
    browser: Browser,
    web_server: WebServer,
    request: pytest.FixtureRequest,
    storage_state: Any = None,
) -> Iterator[Page]:
    """A page of a browser context of its own (``storage_state``: cookies to start with),
    watched: the server's 5xx answers, the page's uncaught script errors and its console
    errors (a script or style the Content-Security-Policy blocked among them) fail the test;
    a failed test leaves a screenshot."""
    context = browser.new_context(
        base_url=web_server.url,
        viewport=browserkit.LAPTOP,
        locale="en-GB",
        storage_state=storage_state,
    )
    context.set_default_timeout(browserkit.TIMEOUT_MS)
    opened = context.new_page()
    failures: list[str] = []

    def answered(response: Response) -> None:
        if response.status >= 500 and response.url.startswith(web_server.url):
            failures.append(f"{response.status} from {response.request.method} {response.url}")

    def logged(message: ConsoleMessage) -> None:
        # A 4xx the test asked for is logged as a failed load too: not an error of the page.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            failures.append(f"console error on {opened.url}: {message.text}")

    opened.on("response", answered)
    opened.on("console", logged)
    opened.on("pageerror", lambda error: failures.append(f"script error: {error}"))
    try:
        yield opened
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            name = re.sub(r"[^a-z0-9._-]+", "-", request.node.nodeid.lower()).strip("-")
            folder = browserkit.output_dir() / "failures"
            folder.mkdir(parents=True, exist_ok=True)
            opened.screenshot(path=folder / f"{name}.png", full_page=True)
    finally:
        context.close()
    if failures:
        pytest.fail(f"the page saw errors (server log: {web_server.log}):\n" + "\n".join(failures))


@pytest.fixture
def page(browser: Browser, web_server: WebServer, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page signed in as nobody."""
    with watched_page(browser, web_server, request) as opened:
        yield opened


@pytest.fixture(scope="module")
def admin_state(browser: Browser, web_server: WebServer) -> Any:
    """The cookies of one sign-in of the site admin, made once per module (a password check
    costs the server a deliberately slow hash)."""
    context = browser.new_context(base_url=web_server.url)
    context.set_default_timeout(browserkit.TIMEOUT_MS)
    try:
        browserkit.sign_in(context.new_page(), web_server.admin_user, web_server.admin_password)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def admin_page(
    browser: Browser, web_server: WebServer, admin_state: Any, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page signed in as the site admin (a session of its own test module, shared by its
    tests: signing out in a test ends it for the others — sign in afresh with ``page``)."""
    with watched_page(browser, web_server, request, admin_state) as opened:
        yield opened
