"""Project settings → Webhooks in a real browser (issue 12): an admin reveals the secret,
regenerates it after the confirmation page (no script needed), and the page then shows a new
secret — the one the service verifies with; a GitHub-shaped delivery signed with the old one is
refused and one signed with the new one accepted. The project is made through the API."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page

if TYPE_CHECKING:
    import httpx
    from playwright.sync_api import Page

SLUG, NAME = "hook-flow", "Hook flow"


def github_push(api: httpx.Client, secret: str) -> httpx.Response:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return api.post(
        f"/hooks/github/{SLUG}",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": signature,
            "X-GitHub-Delivery": "flow-1",
            "Content-Type": "application/json",
        },
    )


def test_the_secret_is_revealed_and_regenerated_after_confirming(
    admin_page: Page, web_server: WebServer
) -> None:
    page = admin_page
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        flowkit.ok(api.post("/api/v1/projects", json={"name": NAME}), 201)
        page.goto(paths.project(SLUG))
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_role("heading", name="Webhooks").wait_for()
        secret = page.locator("#webhook-secret")
        assert not secret.is_visible()
        page.get_by_text("Reveal secret").click()
        old = secret.inner_text().strip()
        assert old
        check_page(page, "webhooks")

        page.get_by_role("link", name="Regenerate secret").click()
        page.get_by_text("Make a new webhook secret?").wait_for()
        page.get_by_role("button", name="Regenerate secret").click()
        page.get_by_role("status").filter(has_text="New webhook secret made").wait_for()
        page.get_by_text("Reveal secret").click()
        new = page.locator("#webhook-secret").inner_text().strip()
        assert new and new != old

        assert github_push(api, old).status_code in (401, 403)
        assert github_push(api, new).status_code < 300
