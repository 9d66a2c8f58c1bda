"""The foundation's pages in a real browser, driven as a person does (issue 12): sign in →
create a project → it is listed; a stranger gets 404 on it; a form posted without its CSRF
token (or with a wrong one) is refused and changes nothing; sign out ends the session. Every
page on the way passes axe-core and is screenshotted at laptop and phone widths."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page, sign_in
from support.httpkit import serving_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

STRANGER, STRANGER_PASSWORD = "stranger", "a stranger's own passphrase"


def project_slugs(web_server: WebServer) -> set[str]:
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        answer = flowkit.ok(api.get("/api/v1/projects"))
    items = answer["items"] if isinstance(answer, dict) else answer
    return {item["slug"] for item in items}


def test_sign_in_create_a_project_and_find_it_listed(page: Page, web_server: WebServer) -> None:
    page.goto(paths.HOME)
    # Not signed in: the page asks for it first, and comes back after.
    assert page.url.split("?")[0].endswith(paths.SIGNIN), page.url
    check_page(page, "signin")
    page.get_by_label("Username").fill(web_server.admin_user)
    page.get_by_label("Password", exact=True).fill(web_server.admin_password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{paths.HOME}")

    page.get_by_role("link", name="New project").first.click()
    page.wait_for_url(f"**{paths.HOME}/new")
    check_page(page, "project-new")
    page.get_by_label("Name", exact=True).fill("Browser Flow")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(f"**{paths.project('browser-flow')}")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading.split() == ["Project", "Browser", "Flow"], heading
    assert "Project Browser Flow is created." in page.get_by_role("status").inner_text()
    check_page(page, "project-overview")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    page.wait_for_url(f"**{paths.HOME}")
    listed = page.get_by_role("row").filter(has_text="Browser Flow")
    assert listed.get_by_role("link", name="Browser Flow").get_attribute("href") == (
        paths.project("browser-flow")
    )
    check_page(page, "project-list")
    assert "browser-flow" in project_slugs(web_server)


def test_a_stranger_gets_404_on_a_project_not_theirs(page: Page, web_server: WebServer) -> None:
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        flowkit.ok(api.post("/api/v1/projects", json={"name": "Not For Strangers"}), 201)
    web_server.create_user(STRANGER, STRANGER_PASSWORD)
    sign_in(page, STRANGER, STRANGER_PASSWORD)

    answer = page.goto(paths.project("not-for-strangers"))
    assert answer is not None and answer.status == 404
    assert "Not For Strangers" not in page.content()
    # The same answer as for a project that does not exist at all.
    missing = page.locator("main").inner_text()
    page.goto(paths.project("no-such-project"))
    assert page.locator("main").inner_text() == missing
    check_page(page, "not-found")

    page.goto(paths.HOME)
    assert page.get_by_role("link", name="Not For Strangers").count() == 0
    check_page(page, "project-list-empty")


def test_a_form_without_its_csrf_token_is_refused(admin_page: Page, web_server: WebServer) -> None:
    for variant, token in (("missing", None), ("wrong", "0" * 43)):
        admin_page.goto(f"{paths.HOME}/new")
        form = admin_page.get_by_role("region", name="New project").locator("form")
        field = form.locator("input[name=csrf_token]")
        if token is None:
            field.evaluate("input => input.remove()")
        else:
            field.evaluate("(input, token) => { input.value = token; }", token)
        admin_page.get_by_label("Name", exact=True).fill(f"Forged {variant}")
        with admin_page.expect_response(re.compile(r"/new$")) as posted:
            form.get_by_role("button", name="Create project").click()
        assert posted.value.status == 403, variant
        assert "csrf_token_invalid" in admin_page.locator("main").inner_text(), variant
        assert f"forged-{variant}" not in project_slugs(web_server)
    check_page(admin_page, "csrf-refused")


def test_a_form_sent_from_another_site_is_refused(admin_page: Page, web_server: WebServer) -> None:
    # Another origin on the same host (another port): the same site to the browser, so the
    # session cookie goes with the post despite SameSite=Lax — the server's own checks refuse.
    target = f"{web_server.url}{paths.HOME}/new"
    forged = (
        "<!doctype html><html lang=en><head><title>elsewhere</title></head><body><main>"
        f'<form method=post action="{target}"><input name=name value="Forged Elsewhere">'
        "<input type=hidden name=csrf_token value=guessed><button>Send</button></form>"
        "</main></body></html>"
    ).encode()

    async def elsewhere(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": forged})

    with serving_app(elsewhere) as other_origin:
        admin_page.goto(other_origin)
        with admin_page.expect_response(target) as posted:
            admin_page.get_by_role("button", name="Send").click()
    assert posted.value.status == 403
    assert "origin_refused" in admin_page.locator("main").inner_text()
    assert "forged-elsewhere" not in project_slugs(web_server)


def test_sign_out_ends_the_session(page: Page, web_server: WebServer) -> None:
    sign_in(page, web_server.admin_user, web_server.admin_password)
    page.locator("summary").filter(has_text=web_server.admin_user).click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(f"**{paths.SIGNIN}*")
    page.goto(paths.HOME)
    assert page.url.split("?")[0].endswith(paths.SIGNIN), page.url
