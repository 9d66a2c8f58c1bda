"""The CircleCI article's flow on repolink's pages (issue 12): on Project settings → Checkout
keys a person adds a user key and reads its public key right on the page (no developer tools),
adds that key on the built-in host's Access keys page, and the project's fetch — refused before,
the user key being the preferred one — then succeeds. Set-up that is not the flow (the hosted
repository, the project connected with a deploy key the host does not know) goes through the
API and git."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page

if TYPE_CHECKING:
    import httpx
    from playwright.sync_api import Page

WORKSPACE, SLUG, NAME = "circle", "circle-flow", "Circle flow"


def connected_without_access(api: httpx.Client, web_server: WebServer, root: Path) -> None:
    """``circle/circle-flow`` hosted with commits, and project ``circle-flow`` connected to it
    with a generated deploy key that the host was never given."""
    flowkit.hosted_repository(api, web_server.service, root, workspace=WORKSPACE, slug=SLUG)
    project = flowkit.ok(api.post("/api/v1/projects", json={"name": NAME}), 201)
    assert project["slug"] == SLUG
    port = web_server.service.ssh_port or 0
    for fingerprint in flowkit.printed_host_keys(web_server.service):
        trusted = api.post(
            "/api/v1/known-hosts",
            json={"host": "127.0.0.1", "port": port, "fingerprint": fingerprint},
        )
        flowkit.ok(trusted, 200, 201)
    url = f"ssh://git@127.0.0.1:{port}/{WORKSPACE}/{SLUG}.git"
    connection = api.put(
        f"/api/v1/projects/{SLUG}/repository", json={"url": url, "generate": {"type": "ed25519"}}
    )
    flowkit.ok(connection, 200, 201)


def fetch(api: httpx.Client) -> Any:
    return flowkit.ok(api.post(f"/api/v1/projects/{SLUG}/fetch", params={"wait": "true"}))


def test_a_user_key_read_off_the_page_and_added_on_the_host_makes_the_fetch_work(
    admin_page: Page, web_server: WebServer, tmp_path: Path
) -> None:
    page = admin_page
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        connected_without_access(api, web_server, tmp_path)

        page.goto(paths.project(SLUG))
        page.get_by_role("link", name="Checkout keys").click()
        page.get_by_role("heading", name="Checkout keys").wait_for()
        page.get_by_role("button", name="Add user key").click()
        page.get_by_text("New user key added.").wait_for()
        mine = page.locator("section.card", has=page.get_by_role("heading", name="(yours)"))
        assert "preferred" in mine.inner_text()
        assert "MD5" in mine.inner_text() and "SHA256:" in mine.inner_text()
        public_key = mine.locator("pre.key").inner_text().strip()
        assert public_key.startswith("ssh-ed25519 ")
        assert "PRIVATE" not in page.content()
        check_page(page, "checkout-keys")

        # The preferred key is the user key, and the host does not know it yet.
        refused = fetch(api)
        assert refused["errors"] != [], refused

        page.goto(paths.HOST_REPOSITORIES)
        page.get_by_role("link", name=f"{WORKSPACE}/{SLUG}").click()
        page.get_by_role("heading", name="Access keys").wait_for()
        page.get_by_label("Label").fill("circleci user key")
        page.get_by_label("Key", exact=True).fill(public_key)
        page.get_by_role("button", name="Add key").click()
        page.get_by_text("Access key circleci user key added (read-only).").wait_for()

        fetched = fetch(api)
        assert fetched["errors"] == [], fetched
    # The page says the key was used.
    page.goto(paths.project(SLUG, "settings", "checkout-keys"))
    mine = page.locator("section.card", has=page.get_by_role("heading", name="(yours)"))
    assert "never" not in mine.locator("dl.facts").inner_text().split("Last used")[-1]
