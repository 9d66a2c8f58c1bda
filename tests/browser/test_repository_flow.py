"""Project → Settings → Repository in a real browser (issue 12), the Valohai article's walk by
clicks and typing, in its order: sign in → create a project → Settings → Repository → Generate
SSH key → add the public key as an access key on the built-in host's page → type the https URL
and take the SSH form offered → trust the host's fingerprint → Save with the generated key, the
first fetch turning ok without a reload → Fetch repository → the commits in the Create
execution dropdown → a pushed commit appears on Manage commits without a reload. The doctor's
checklist loads in place on demand. Also: the named key errors beside the private-key area, and
a viewer sees the connection but no forms, while a form without its CSRF token is refused.
Set-up that is not the flow (the hosted repository, a viewer) goes through the APIs and git."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import expect

from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page, sign_in
from support.keytexts import PUTTY
from support.pagekit import SLUG as TOUR_PROJECT
from support.pagekit import Tour
from support.platformkit import CountingProxy

if TYPE_CHECKING:
    from playwright.sync_api import Page

VIEWER, VIEWER_PASSWORD = "repo-viewer", "a viewer's own passphrase"


def create_project(page: Page, name: str) -> None:
    page.goto(paths.HOME)
    page.get_by_role("link", name="New project").first.click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", level=1).filter(has_text=name).wait_for()


def open_repository(page: Page) -> None:
    page.get_by_role("link", name="Repository", exact=True).click()
    page.get_by_role("heading", name="Repository", exact=True).wait_for()


def test_the_valohai_flow_by_clicks(
    admin_page: Page, web_server: WebServer, tmp_path: Path
) -> None:
    page = admin_page
    ssh_port = web_server.service.ssh_port
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        pusher, commits = flowkit.hosted_repository(
            api, web_server.service, tmp_path, workspace="valohai", slug="flow"
        )
        # Trust is site-wide and the server is shared: another test of this process may have
        # trusted its SSH host already (flowkit.connect_project does), and the flow starts
        # with the host unknown.
        for key in flowkit.ok(api.get("/api/v1/known-hosts")):
            if key["id"] and (key["host"], key["port"]) == ("127.0.0.1", ssh_port):
                flowkit.ok(api.delete(f"/api/v1/known-hosts/{key['id']}"), 204)
    create_project(page, "Valohai Flow")
    open_repository(page)
    check_page(page, "repository-empty")

    # Step 1, as the article: Generate SSH key (ed25519 by default) before any URL.
    expect(page.get_by_label("Key type")).to_have_value("ed25519")
    page.get_by_role("button", name="Generate SSH key").click()
    page.get_by_role("status").filter(has_text="Generated a new key").wait_for()
    public_key = page.locator("#public-key").inner_text().strip()
    assert public_key.startswith("ssh-ed25519 ")
    fingerprint = page.locator("#fingerprint-sha256").inner_text()
    assert fingerprint.startswith("SHA256:")
    assert page.locator("#fingerprint-md5").inner_text().startswith("MD5:")
    expect(page.locator("#access-key-step")).to_contain_text("read-only access key")
    check_page(page, "repository-key-generated")

    # Step 2: the public key added as a read-only access key on the host's page.
    page.goto(paths.host_repository("valohai", "flow", "access-keys"))
    page.get_by_role("heading", name="Access keys").wait_for()
    page.get_by_label("Label").fill("repolink-valohai-flow")
    page.get_by_label("Key", exact=True).fill(public_key)
    page.get_by_role("button", name="Add key").click()
    page.get_by_text("Access key repolink-valohai-flow added (read-only).").wait_for()

    # Step 3: the SSH URL. The https address from the browser's bar: the SSH form is offered
    # (keeping the port).
    page.goto(paths.project("valohai-flow"))
    open_repository(page)
    page.get_by_label("SSH URL").fill(f"https://127.0.0.1:{ssh_port}/valohai/flow")
    page.locator("#url-live-error").filter(has_text="url_https").wait_for()
    page.locator("#use-suggestion").click()
    ssh_url = f"ssh://git@127.0.0.1:{ssh_port}/valohai/flow.git"
    assert page.get_by_label("SSH URL").input_value() == ssh_url

    # The host is not known yet: its keys are shown, one fingerprint is trusted by a click.
    trust = page.get_by_role("button", name=re.compile("^Trust this fingerprint"))
    trust.first.wait_for()
    trust.first.click()
    page.get_by_role("status").filter(has_text="is trusted").wait_for()
    assert page.get_by_label("SSH URL").input_value() == ssh_url
    page.get_by_label("SSH URL").press("End")  # the live check runs again: trusted now
    page.get_by_label("SSH URL").type(" ")
    page.get_by_label("SSH URL").press("Backspace")
    page.locator("#url-check").filter(has_text="Host key trusted").wait_for()

    # Save with the generated key: the first fetch succeeds at once, shown without a reload.
    expect(page.get_by_label(re.compile("^Use the generated key"))).to_be_checked()
    assert fingerprint in page.locator("#connect-form").inner_text()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved with the generated key").wait_for()
    page.evaluate("() => { window.stillTheSamePage = true; }")
    expect(page.locator("#connection-state")).to_have_text("ok", timeout=60_000)
    expect(page.locator("#connection-error")).to_be_hidden()
    expect(page.locator("#connection-commits")).to_have_text(str(len(commits)))
    assert page.evaluate("() => window.stillTheSamePage === true")
    assert page.locator("#public-key").inner_text().strip() == public_key
    check_page(page, "repository-connected")

    # Fetch repository: the state is shown without a reload.
    page.get_by_role("button", name="Fetch repository").click()
    expect(page.locator("#connection-state")).to_have_text("ok", timeout=60_000)
    assert page.evaluate("() => window.stillTheSamePage === true")

    # The commits in the Create execution dropdown, newest first.
    page.get_by_role("link", name="Commits", exact=True).click()
    page.get_by_role("link", name="Create execution").first.click()
    page.get_by_role("heading", name="Create execution").wait_for()
    options = page.get_by_label("Commit", exact=True).locator("option")
    values = options.evaluate_all("options => options.map(option => option.value)")
    assert [value for value in values if value] == list(reversed(commits))

    # A push shows up on Manage commits without a reload.
    page.goto(paths.project("valohai-flow"))
    page.get_by_role("link", name="Commits", exact=True).click()
    page.get_by_role("heading", name="Commits", exact=True).wait_for()
    page.evaluate("() => { window.stillTheSamePage = true; }")
    new = pusher.commit("pushed after connecting")
    pusher.push()
    page.locator(f'#commit-rows tr[data-sha="{new}"]').wait_for(timeout=60_000)
    assert page.evaluate("() => window.stillTheSamePage === true")


def test_named_key_errors_beside_the_private_key_area(admin_page: Page, tmp_path: Path) -> None:
    page = admin_page
    create_project(page, "Key Errors")
    open_repository(page)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True
    )
    private = (tmp_path / "id").read_text()
    cut = private[: len(private) // 2] + "\n-----END OPENSSH PRIVATE KEY-----\n"
    area = page.get_by_label("Private key", exact=True)
    for text, code in (
        ((tmp_path / "id.pub").read_text(), "key_is_public"),
        (cut, "key_truncated"),
        (PUTTY, "key_putty_format"),
    ):
        area.fill(text)
        error = page.locator("#key-live-error")
        expect(error).to_contain_text(code)
        expect(error).to_contain_text("Fix:")
        expect(area).to_have_attribute("aria-invalid", "true")
    check_page(page, "repository-key-error")
    area.fill(private)
    expect(page.locator("#key-check")).to_contain_text("SHA256:")
    expect(area).not_to_have_attribute("aria-invalid", "true")


def test_a_viewer_sees_no_forms_and_a_tokenless_form_is_refused(
    page: Page, admin_page: Page, web_server: WebServer
) -> None:
    create_project(admin_page, "Viewer Sees")
    web_server.create_user(VIEWER, VIEWER_PASSWORD)
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        flowkit.ok(
            api.put(
                "/api/v1/projects/viewer-sees/repository",
                json={"url": "git@github.com:acme/widgets.git", "generate": {"type": "ed25519"}},
            ),
            200,
            201,
        )
        flowkit.ok(
            api.put(f"/api/v1/projects/viewer-sees/members/{VIEWER}", json={"role": "viewer"}),
            200,
            201,
        )
    sign_in(page, VIEWER, VIEWER_PASSWORD)
    page.goto(paths.project("viewer-sees"))
    open_repository(page)
    assert "git@github.com:acme/widgets.git" in page.locator("main").inner_text()
    expect(page.locator("#connection-state")).to_be_visible()
    assert page.locator("#connect-form").count() == 0
    assert page.get_by_role("button", name="Save").count() == 0
    assert page.get_by_role("button", name="Fetch repository").count() == 0
    check_page(page, "repository-viewer")

    # The admin's form without its token: refused, nothing changed.
    admin_page.goto(paths.project("viewer-sees", "settings", "repository"))
    form = admin_page.locator("#connect-form")
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    admin_page.get_by_label("SSH URL").fill("git@github.com:acme/other.git")
    with admin_page.expect_response(re.compile(r"/settings/repository$")) as posted:
        admin_page.get_by_role("button", name="Save").click()
    assert posted.value.status == 403
    assert "csrf_token_invalid" in admin_page.locator("main").inner_text()
    admin_page.goto(paths.project("viewer-sees", "settings", "repository"))
    assert "git@github.com:acme/widgets.git" in admin_page.locator("main").inner_text()


def test_the_generated_private_key_is_downloaded_once(admin_page: Page) -> None:
    page = admin_page
    create_project(page, "Key Download")
    open_repository(page)
    page.get_by_label("Key type").select_option("ecdsa")
    page.get_by_label("Download the private key").check()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Generate SSH key").click()
    download = downloading.value
    assert download.suggested_filename == "repolink-key-download"
    text = Path(download.path()).read_text()
    assert text.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    public_key = page.locator("#public-key")
    public_key.wait_for()
    assert public_key.inner_text().startswith("ecdsa-sha2-nistp256 ")
    body = text.splitlines()[1]
    assert body not in page.content()
    # The public half downloads as repolink-<project>.pub, as often as wanted.
    with page.expect_download() as public_download:
        page.get_by_role("link", name="Download repolink-key-download.pub").click()
    assert public_download.value.suggested_filename == "repolink-key-download.pub"
    assert Path(public_download.value.path()).read_text().strip() == public_key.inner_text()
    # Saved with a URL, the connection has that very key.
    page.get_by_label("SSH URL").fill("git@github.com:acme/widgets.git")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved with the generated key").wait_for()
    assert "git@github.com:acme/widgets.git" in page.locator("main").inner_text()
    assert page.locator("#public-key").inner_text() == public_key.inner_text()


def test_the_doctor_checklist_loads_in_place(admin_page: Page, tour: Tour) -> None:
    page = admin_page
    assert tour.values["slug"] == TOUR_PROJECT
    page.goto(paths.project(TOUR_PROJECT, "settings", "repository"))
    expect(page.locator("#doctor-title")).to_have_count(0)  # opening the page runs no doctor
    page.evaluate("() => { window.stillTheSamePage = true; }")
    page.get_by_role("button", name="Run the doctor").click()
    page.locator("#doctor-title").wait_for(timeout=60_000)
    checks = page.locator("#doctor .checklist > li")
    assert checks.count() >= 3
    expect(checks.first).to_contain_text("passed")
    assert page.evaluate("() => window.stillTheSamePage === true")
    assert page.url.endswith("/settings/repository")
    check_page(page, "repository-doctor")


def test_fetch_repository_shows_git_s_progress_live_then_the_outcome(
    admin_page: Page, web_server: WebServer, tmp_path: Path
) -> None:
    page = admin_page
    service = web_server.service
    relay = CountingProxy(service.ssh_port or 0)  # a slow peer in front of the SSH host
    try:
        with flowkit.api_client(service, web_server.admin_token) as api:
            pusher, _ = flowkit.hosted_repository(
                api, service, tmp_path, workspace="progress", slug="live"
            )
            flowkit.connect_project(
                api, service, relay.port, name="Live", workspace="progress", slug="live"
            )
            first = flowkit.ok(api.post("/api/v1/projects/live/fetch", params={"wait": "true"}))
            assert first["errors"] == [], first
        pusher.commit("a large file", big=True)
        pusher.push()
        page.goto(paths.project("live", "settings", "repository"))
        page.evaluate("() => { window.stillTheSamePage = true; }")
        relay.throttle = 0.02  # about 200 KB/s: the fetch takes seconds, reported as it goes
        page.get_by_role("button", name="Fetch repository").click()
        shown = page.locator("#fetch-progress")
        expect(shown).to_contain_text(re.compile(r"Fetching: .*\d+%"), timeout=120_000)
        relay.throttle = None
        expect(shown).to_have_text("Last fetch: 1 new commit", timeout=120_000)
        expect(page.locator("#connection-state")).to_have_text("ok")
        expect(page.locator("#connection-commits")).to_have_text("3")
        assert page.evaluate("() => window.stillTheSamePage === true")
    finally:
        relay.close()
