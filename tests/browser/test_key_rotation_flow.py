"""Rotating the deploy key on Project settings → SSH keys in a real browser (issue 12): start
a rotation, read the pending key's public half off the page, give it to the repository, and
complete — the new key, proven by a real fetch over the embedded SSH host, is the deploy key
and the old one retired. Aborting asks on a page of its own first (no script needed). Set-up
(the hosted repository, the project connected, the host told of the new key) goes through the
API and git."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page

if TYPE_CHECKING:
    from playwright.sync_api import Page

WORKSPACE, SLUG, NAME = "rotate", "rotate-flow", "Rotate flow"


def test_a_rotation_started_on_the_page_completes_with_a_real_fetch(
    admin_page: Page, web_server: WebServer, tmp_path: Path
) -> None:
    page = admin_page
    port = web_server.service.ssh_port or 0
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        flowkit.hosted_repository(api, web_server.service, tmp_path, workspace=WORKSPACE, slug=SLUG)
        connection = flowkit.connect_project(
            api, web_server.service, port, name=NAME, workspace=WORKSPACE, slug=SLUG
        )
        old = connection["deploy_key"]["fingerprint_sha256"]

        page.goto(paths.project(SLUG))
        page.get_by_role("link", name="SSH keys").click()
        page.get_by_role("heading", name="SSH keys").wait_for()
        assert old in page.get_by_role("table", name=f"SSH keys of {NAME}").inner_text()

        # Abort asks first, on its own page; Cancel keeps the rotation.
        page.get_by_role("button", name="Start rotation").click()
        page.get_by_role("status").filter(has_text="Rotation started").wait_for()
        page.get_by_role("link", name="Abort rotation").click()
        page.get_by_text("Abort the rotation?").wait_for()
        check_page(page, "ssh-keys-confirm")
        page.get_by_role("link", name="Cancel").click()
        page.get_by_role("button", name="Complete rotation").wait_for()

        new_public = page.locator("#pending-public").inner_text().strip()
        assert new_public.startswith("ssh-ed25519 ")
        check_page(page, "ssh-keys-pending")
        added = api.post(
            f"{flowkit.HOST_API}/repositories/{WORKSPACE}/{SLUG}/deploy-keys",
            json={"key": new_public, "label": "rotated"},
        )
        flowkit.ok(added, 200, 201)

        page.get_by_role("button", name="Complete rotation").click()
        page.get_by_role("status").filter(has_text="Rotation complete").wait_for()
        table = page.get_by_role("table", name=f"SSH keys of {NAME}").inner_text()
        keys = flowkit.ok(api.get(f"/api/v1/projects/{SLUG}/keys"))["items"]
    states = {key["fingerprint_sha256"]: key["state"] for key in keys}
    assert states[old] == "retired"
    [new] = [fingerprint for fingerprint, state in states.items() if state == "active"]
    assert new != old and new in table
    assert page.get_by_role("button", name="Start rotation").count() == 1
