"""A workspace's account keys and a repository's webhooks of the built-in host in a real
browser (issue 12): an account key added on the page pushes with real git over the embedded
SSH host; a webhook URL the network policy refuses is named beside the field; a webhook added
on the page hears the next push, signed with its secret, and the delivery shows on the page.
Set-up (the repository and its first commits) goes through the host API and git."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from repolink.signing import sign_body
from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page
from support.hostkit import GitClient, generate_key_pair

if TYPE_CHECKING:
    from playwright.sync_api import Page

SECRET = "browser-flow-webhook-secret"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on loopback: keeps each POST's headers and body, answers 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_an_account_key_added_on_the_page_pushes_to_the_workspace(
    admin_page: Page, web_server: WebServer, tmp_path: Path
) -> None:
    page = admin_page
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        flowkit.hosted_repository(
            api, web_server.service, tmp_path / "setup", workspace="team", slug="app"
        )
    person = generate_key_pair(tmp_path / "keys", "alice")
    known_hosts = flowkit.scanned_known_hosts(web_server.service, tmp_path / "known_hosts")
    alice = GitClient(tmp_path / "home", person, known_hosts, web_server.service.ssh_port or 0)
    clone = tmp_path / "clone"
    assert alice.git("clone", alice.url("team/app.git"), str(clone)).returncode != 0

    page.goto(paths.host_repository("team", "app", "access-keys"))
    page.get_by_role("link", name="Account keys of team").click()
    page.get_by_label("Label").fill("alice laptop")
    page.get_by_label("Key", exact=True).fill(person.public_line)
    page.get_by_role("button", name="Add key").click()
    page.get_by_text("Account key alice laptop added").wait_for()
    assert person.fingerprint in page.get_by_role("row", name="alice laptop").inner_text()
    check_page(page, "host-account-keys")

    cloned = alice.git("clone", alice.url("team/app.git"), str(clone))
    assert cloned.returncode == 0, cloned.stderr
    (clone / "alice.txt").write_text("from alice\n")
    alice.git("-C", str(clone), "add", "alice.txt")
    alice.git("-C", str(clone), "commit", "-qm", "alice's commit")
    pushed = alice.git("-C", str(clone), "push", "origin", "main")
    assert pushed.returncode == 0, pushed.stderr


def test_a_webhook_added_on_the_page_hears_the_next_push(
    admin_page: Page, web_server: WebServer, tmp_path: Path, receiver: Receiver
) -> None:
    page = admin_page
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        pusher, _ = flowkit.hosted_repository(
            api, web_server.service, tmp_path, workspace="hooked", slug="site"
        )
    page.goto(paths.host_repository("hooked", "site", "access-keys"))
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("heading", name="Webhooks").wait_for()

    # A private address the operator did not allow: named beside the URL field.
    page.get_by_label("URL").fill("http://10.20.30.40/hook")
    page.get_by_role("button", name="Add webhook").click()
    error = page.locator("#url-error")
    error.wait_for()
    assert "webhook_url_forbidden" in error.inner_text()
    check_page(page, "host-webhooks-error")

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Secret").fill(SECRET)
    page.get_by_role("button", name="Add webhook").click()
    page.get_by_text("Webhook added").wait_for()
    assert SECRET not in page.content()
    assert "No delivery yet" in page.content()

    commit = pusher.commit("heard by the hook")
    pusher.push()
    headers, body = flowkit.until(lambda: receiver.received[:1], "a delivery")[0]
    assert commit.encode() in body
    assert headers["X-Hub-Signature"] == sign_body(SECRET.encode(), body)

    def delivered() -> bool:
        page.reload()
        return page.locator("span.badge", has_text="delivered").count() == 1

    flowkit.until(delivered, "the delivery shown as delivered")
    row = page.get_by_role("row").filter(has_text="repo:push")
    assert "HTTP 200" in row.inner_text()
    check_page(page, "host-webhooks")
