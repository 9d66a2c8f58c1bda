"""The browser harness itself (:mod:`support.browserkit`): axe fails a page with a serious
violation and names it; screenshots come at both widths; a 5xx answer fails a test."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import browserkit, flowkit
from support.browserkit import WebServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

CLEAN = (
    "<!doctype html><html lang=en><head><title>clean</title></head>"
    "<body><main><h1>A clean page</h1><p>Nothing wrong here.</p></main></body></html>"
)
# An image with no text alternative (axe: image-alt, critical) and an unlabelled text field
# (label, critical).
FAULTY = (
    "<!doctype html><html lang=en><head><title>faulty</title></head><body><main>"
    "<h1>Faulty</h1><img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='>"
    "<input type=text id=unlabelled></main></body></html>"
)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_a_clean_page_passes_the_accessibility_check(page: Page) -> None:
    page.set_content(CLEAN)
    results = browserkit.check_accessibility(page)
    assert results["violations"] == []


def test_critical_violations_fail_the_check_and_are_named(page: Page) -> None:
    page.set_content(FAULTY)
    with pytest.raises(pytest.fail.Exception) as failed:
        browserkit.check_accessibility(page)
    report = str(failed.value)
    assert "2 serious or critical accessibility violation(s)" in report, report
    assert "- image-alt (critical)" in report, report
    assert "- label (critical)" in report, report
    assert "#unlabelled" in report, report
    assert "dequeuniversity.com" in report, report


def test_a_disabled_rule_is_not_run(page: Page) -> None:
    page.set_content(FAULTY.replace("<input type=text id=unlabelled>", ""))
    results = browserkit.check_accessibility(page, disable=["image-alt"])
    assert results["violations"] == []


def test_screenshots_are_saved_at_laptop_and_phone_widths(
    page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(browserkit.OUTPUT_ENV, str(tmp_path))
    page.set_content(CLEAN)
    saved = browserkit.screenshot(page, "harness-clean")
    assert saved == [
        tmp_path / "screenshots" / "harness-clean-laptop.png",
        tmp_path / "screenshots" / "harness-clean-phone.png",
    ]
    (laptop_width, laptop_height), (phone_width, phone_height) = map(png_size, saved)
    assert (laptop_width, phone_width) == (1280, 390)
    assert laptop_height >= 800 and phone_height >= 844  # the whole page, at least the screen
    assert page.viewport_size == browserkit.LAPTOP  # put back for the rest of the test


def test_a_screenshot_name_is_a_plain_file_name(page: Page) -> None:
    with pytest.raises(ValueError, match="screenshot name"):
        browserkit.screenshot(page, "../outside")


def test_a_page_wider_than_a_phone_fails_the_fit_check(page: Page) -> None:
    page.set_content(CLEAN)
    browserkit.check_fits_phone(page)
    page.set_content(CLEAN.replace("<p>", "<p id=wide style='width:900px'>"))
    with pytest.raises(pytest.fail.Exception) as failed:
        browserkit.check_fits_phone(page)
    assert "908 px wide on a 390 px phone screen" in str(failed.value)  # 8 px: body margin
    assert 'id="wide"' in str(failed.value)


def test_a_user_made_for_the_tests_can_use_the_api(web_server: WebServer) -> None:
    token = web_server.create_user("harness-user", "harness user passphrase", token=True)
    assert token
    with flowkit.api_client(web_server.service, token) as api:
        assert flowkit.ok(api.get("/api/v1/projects")) is not None
    with flowkit.api_client(web_server.service, token + "x") as api:
        assert api.get("/api/v1/projects").status_code == 401


def test_a_control_whose_focus_cannot_be_seen_fails_the_keyboard_check(page: Page) -> None:
    page.set_content(CLEAN.replace("<p>", "<p><a href='#one'>one</a> <button>two</button>"))
    assert browserkit.check_keyboard_focus(page) == 2
    page.set_content(
        CLEAN.replace("</title>", "</title><style>button{outline:none}</style>").replace(
            "<p>", "<p><a href='#one'>one</a> <button>two</button>"
        )
    )
    with pytest.raises(pytest.fail.Exception) as failed:
        browserkit.check_keyboard_focus(page)
    assert "the keyboard focus cannot be seen on <button>two</button>" in str(failed.value)
