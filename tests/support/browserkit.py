"""Pages in a real browser: Debian's Chromium driven by Playwright, axe-core run in the page,
screenshots at a laptop's and a phone's width.

- :func:`missing` — why browser tests cannot run here (no ``/usr/bin/chromium``, no
  ``playwright`` or axe package), else ``None``; the fixtures skip with that reason.
- :func:`launch` — headless Chromium from ``/usr/bin/chromium``: Playwright never downloads a
  browser of its own (the machines reach only the package registries).
- :func:`check_accessibility` — axe-core (the copy bundled by ``axe-playwright-python``) on
  the page as it is now; fails the test on any ``serious`` or ``critical`` violation, each
  printed with its rule, help link and the elements at fault.
- :func:`screenshot` — the whole page at 1280×800 and at 390×844, saved as
  ``<output>/screenshots/NAME-laptop.png`` and ``NAME-phone.png``; the output directory is
  ``$TEST_OUTPUT_DIR``, else ``test-output/`` at the top of the checkout (git ignores it).
- :func:`check_fits_phone` — at 390 px the page does not scroll sideways (a wide table or
  code block scrolls inside its own box instead).
- :func:`check_keyboard_focus` — Tab moves through the page's controls, and each shows where
  the focus is (an outline, a shadow, a changed border or background).
- :func:`check_page` — all four on the page as it is now: what a test does on each page it
  reaches.
- :func:`sign_in` — the sign-in form filled and sent as a person does.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repolink.web import paths
from support.servekit import Service, service_environment

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WIDTHS = {"laptop": LAPTOP, "phone": PHONE}
BLOCKING_IMPACTS = ("serious", "critical")
OUTPUT_ENV = "TEST_OUTPUT_DIR"
CHECKOUT = Path(__file__).resolve().parents[2]
# Playwright's own wait (ms): generous, as two test processes share two cores with servers.
TIMEOUT_MS = 20_000
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True)
class WebServer:
    """A running ``repolink serve`` for browser tests (the ``web_server`` fixture): the
    process, its data directory, the file its output goes to, its site admin's name and
    password, and an API token of the site admin for set-up through the API."""

    service: Service
    data_dir: Path
    log: Path
    admin_user: str
    admin_password: str
    admin_token: str

    @property
    def url(self) -> str:
        return self.service.url

    def create_user(self, username: str, password: str, *, token: bool = False) -> str | None:
        """A user with ``password``, made as an operator does (``repolink user create`` on
        the server's data directory, the password on stdin); with ``token``, an API token of
        theirs for set-up through the API, else ``None``."""
        environment = service_environment(self.data_dir)
        self._repolink(environment, ["user", "create", username, "--password-file", "-"], password)
        if not token:
            return None
        made = self._repolink(
            environment, ["token", "create", "--user", username, "--name", "browser-tests"]
        )
        return made.splitlines()[0].strip()

    def _repolink(self, environment: dict[str, str], args: list[str], stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "repolink", *args],
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"repolink {' '.join(args)}: {done.stderr}"
        return done.stdout


def missing() -> str | None:
    """Why the browser tests cannot run on this machine, or ``None`` when they can."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is missing: browser tests skipped "
            "(scripts/install-system-deps.sh installs Debian's chromium as root with apt)"
        )
    for module, package in (
        ("playwright.sync_api", "playwright"),
        ("axe_playwright_python", "axe-playwright-python"),
    ):
        try:
            importlib.import_module(module)
        except ImportError:
            return (
                f"the Python package {package!r} is missing: browser tests skipped "
                "(pip install -e '.[dev]')"
            )
    return None


def launch(playwright: Playwright) -> Browser:
    """Headless Debian Chromium (Playwright's default flags; it runs without a sandbox, as
    tests run as root on CI)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)


def output_dir() -> Path:
    """Where a run's screenshots and logs go: ``$TEST_OUTPUT_DIR`` or ``test-output/``."""
    configured = os.environ.get(OUTPUT_ENV)
    return Path(configured) if configured else CHECKOUT / "test-output"


def screenshot(page: Page, name: str) -> list[Path]:
    """The whole page at laptop and phone widths, as ``NAME-laptop.png`` and
    ``NAME-phone.png`` under the output's ``screenshots/``; the viewport is put back after."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"a screenshot name is lower case letters, digits, . _ -: {name!r}")
    folder = output_dir() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    saved = []
    try:
        for width, size in WIDTHS.items():
            page.set_viewport_size(size)
            path = folder / f"{name}-{width}.png"
            page.screenshot(path=path, full_page=True, animations="disabled")
            saved.append(path)
    finally:
        if before is not None:
            page.set_viewport_size(before)
    return saved


@cache
def _axe_source() -> str:
    from axe_playwright_python.base import AXE_FILE_PATH

    return Path(AXE_FILE_PATH).read_text(encoding="utf-8")


def run_axe(page: Page, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """axe-core's results for the page as it is now (violations only, unless ``options``
    ask for more). The script is evaluated through the DevTools protocol, so a page's
    Content-Security-Policy, which rightly allows no foreign script, does not stop it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    results: dict[str, Any] = page.evaluate(
        "options => window.axe.run(document, options)",
        {"resultTypes": ["violations"], **(options or {})},
    )
    return results


def blocking_violations(
    results: Mapping[str, Any], impacts: Iterable[str] = BLOCKING_IMPACTS
) -> list[dict[str, Any]]:
    wanted = set(impacts)
    return [violation for violation in results["violations"] if violation["impact"] in wanted]


def describe_violations(violations: Sequence[Mapping[str, Any]], url: str) -> str:
    """The violations as a person fixing them reads them: rule, impact, what it means, where
    to read more, and each element at fault with axe's summary of the fix."""
    lines = [f"{len(violations)} serious or critical accessibility violation(s) on {url}:"]
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}\n"
            f"  {violation['helpUrl']}"
        )
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            lines.append(f"  * {target}\n    {node['html'][:300]}")
            summary = str(node.get("failureSummary") or "").strip()
            lines.extend(f"    {line.strip()}" for line in summary.splitlines() if line.strip())
    return "\n".join(lines)


def check_accessibility(
    page: Page, *, impacts: Iterable[str] = BLOCKING_IMPACTS, disable: Iterable[str] = ()
) -> dict[str, Any]:
    """axe-core on the page as it is now: fails the test on a violation of one of
    ``impacts`` (serious, critical), printing each readably; the results otherwise.
    ``disable`` names rules not to run — give the reason beside the call."""
    rules = {rule: {"enabled": False} for rule in disable}
    results = run_axe(page, {"rules": rules} if rules else None)
    blocking = blocking_violations(results, impacts)
    if blocking:
        pytest.fail(describe_violations(blocking, page.url), pytrace=False)
    return results


def check_fits_phone(page: Page) -> None:
    """Fails the test when, at the phone's width, the page is wider than the screen (a
    person would have to scroll sideways to read it), naming what pushes it out; the
    viewport is put back after."""
    before = page.viewport_size
    try:
        page.set_viewport_size(PHONE)
        wide: dict[str, Any] = page.evaluate(
            """() => {
                const width = document.documentElement.clientWidth;
                // The innermost elements whose content is wider than their box (a long word,
                // a table), else the innermost past the screen's edge: what pushes it out.
                const spills = e => e.scrollWidth > e.clientWidth + 1
                    && getComputedStyle(e).overflowX === 'visible';
                const past = e => e.getBoundingClientRect().right > width + 1;
                const all = [...document.body.querySelectorAll('*')];
                let found = all.filter(e => spills(e) && ![...e.children].some(spills));
                if (!found.length) found = all.filter(e => past(e) && ![...e.children].some(past));
                const culprits = found.slice(0, 5).map(e => e.outerHTML.slice(0, 160));
                return {width, scroll: document.documentElement.scrollWidth, culprits};
            }"""
        )
    finally:
        if before is not None:
            page.set_viewport_size(before)
    if wide["scroll"] > wide["width"]:
        pytest.fail(
            f"{page.url} is {wide['scroll']} px wide on a {wide['width']} px phone screen; "
            "what pushes it out:\n  " + "\n  ".join(wide["culprits"]),
            pytrace=False,
        )


# What a focused element looks like, to compare with the same element without the focus.
_FOCUS_LOOK = """element => {
    const style = getComputedStyle(element);
    const visible = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    return {
        tag: element.tagName.toLowerCase(),
        html: element.outerHTML.slice(0, 160),
        look: [visible ? style.outlineStyle + style.outlineColor + style.outlineWidth : '',
               style.boxShadow, style.borderColor, style.backgroundColor, style.color,
               style.textDecorationLine].join('|'),
    };
}"""


def check_keyboard_focus(page: Page, *, limit: int = 40) -> int:
    """Tab through the page's first ``limit`` stops: each must be an element that looks
    different focused than not (WCAG 2.4.7). Fails naming the first element whose focus
    cannot be seen; the number of stops otherwise. The page keeps no focus after."""
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    stops = 0
    seen: set[str] = set()
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate_handle("() => document.activeElement")
        element = focused.as_element()
        if element is None or element.evaluate("e => e === document.body"):
            break  # past the last control
        with_focus = element.evaluate(_FOCUS_LOOK)
        if with_focus["html"] in seen:
            break  # back at the start
        seen.add(with_focus["html"])
        # Blurred by script, which :focus-visible follows: the same element, unfocused.
        element.evaluate("e => e.blur()")
        without = element.evaluate(_FOCUS_LOOK)
        element.focus()
        if with_focus["look"] == without["look"]:
            pytest.fail(
                f"{page.url}: the keyboard focus cannot be seen on {with_focus['html']}",
                pytrace=False,
            )
        stops += 1
    page.evaluate("() => document.activeElement?.blur()")
    return stops


def check_page(page: Page, name: str) -> None:
    """The page as it is now passes axe, fits a phone, shows the keyboard focus, and is
    screenshotted as ``name``."""
    check_accessibility(page)
    check_fits_phone(page)
    check_keyboard_focus(page)
    screenshot(page, name)


def sign_in(page: Page, user: str, password: str) -> None:
    """Sign in through the sign-in page, as a person: the form's labelled fields filled, its
    button pressed; fails the test unless the page then leaves the sign-in form."""
    page.goto(paths.SIGNIN)
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if page.url.split("?")[0].endswith(paths.SIGNIN):
        pytest.fail(f"signing in as {user!r} failed: {page.locator('main').inner_text()}")
