"""Known hosts in a real browser (issue 12), against a real SSH host: the site admin scans the
server's own embedded SSH host on its loopback port (the browser tests' server allows loopback
by ``REPOLINK_ALLOWED_NETWORKS``), sees exactly the fingerprints the host printed at start,
trusts one, finds it listed, and removes it after the confirmation page — no script needed.
A host the network policy refuses gets its refusal beside the host field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page

if TYPE_CHECKING:
    from playwright.sync_api import Page

KNOWN_HOSTS = f"{paths.PREFIX}/known-hosts"


@pytest.fixture
def host_untrusted(web_server: WebServer) -> Iterator[None]:
    """The server's SSH host untrusted as 127.0.0.1 for the test (trust is site-wide on the
    shared server: another flow may have trusted it), and trusted again after as it was."""
    port = web_server.service.ssh_port
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:

        def untrust() -> set[str]:
            removed = set()
            for key in flowkit.ok(api.get("/api/v1/known-hosts")):
                if key["id"] and (key["host"], key["port"]) == ("127.0.0.1", port):
                    flowkit.ok(api.delete(f"/api/v1/known-hosts/{key['id']}"), 204)
                    removed.add(key["fingerprint"])
            return removed

        before = untrust()
        yield
        untrust()
        for fingerprint in before:
            again = api.post(
                "/api/v1/known-hosts",
                json={"host": "127.0.0.1", "port": port, "fingerprint": fingerprint},
            )
            flowkit.ok(again, 200, 201)


def test_a_real_hosts_key_is_scanned_trusted_listed_and_removed(
    admin_page: Page, web_server: WebServer, host_untrusted: None
) -> None:
    page = admin_page
    port = str(web_server.service.ssh_port)
    printed = flowkit.printed_host_keys(web_server.service)
    assert printed
    assert trusted_here(web_server) == set()
    page.goto(KNOWN_HOSTS)
    page.get_by_label("Host", exact=True).fill("127.0.0.1")
    page.get_by_label("Port", exact=True).fill(port)
    page.get_by_role("button", name="Scan", exact=True).click()
    page.get_by_role("heading", name="Keys the host presents").wait_for()
    trust_buttons = page.get_by_role("button", name="Trust ")
    shown = {
        (trust_buttons.nth(n).get_attribute("aria-label") or "").removeprefix("Trust ")
        for n in range(trust_buttons.count())
    }
    assert shown == printed  # what the host really presents, nothing else
    check_page(page, "known-hosts-scanned")

    fingerprint = sorted(printed)[0]
    page.get_by_role("button", name=f"Trust {fingerprint}").click()
    page.get_by_role("status").filter(has_text=f"Trusted {fingerprint}").wait_for()
    assert trusted_here(web_server) == {fingerprint}
    row = page.get_by_role("row").filter(has_text=fingerprint).filter(has_text="127.0.0.1")
    assert row.count() == 1

    # Remove: a link to a page that asks (no script), whose button removes the key.
    row.get_by_role("link", name="Remove").click()
    page.get_by_text("Please confirm").wait_for()
    page.get_by_text("Stop trusting this key of").wait_for()
    assert fingerprint in page.content()
    check_page(page, "known-hosts-confirm")
    page.get_by_role("button", name="Remove key").click()
    page.get_by_role("status").filter(has_text="is trusted no more").wait_for()
    assert (
        page.get_by_role("row").filter(has_text=fingerprint).filter(has_text="127.0.0.1").count()
        == 0
    )
    assert trusted_here(web_server) == set()


def trusted_here(web_server: WebServer) -> set[str]:
    """The fingerprints trusted for 127.0.0.1 at the server's SSH port (the a11y tour trusts
    the same host as localhost: another name, another entry)."""
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        keys = flowkit.ok(api.get("/api/v1/known-hosts"))
    return {
        key["fingerprint"]
        for key in keys
        if key["host"] == "127.0.0.1" and key["port"] == web_server.service.ssh_port
    }


def test_a_host_the_network_policy_refuses_is_named_beside_the_host_field(
    admin_page: Page,
) -> None:
    page = admin_page
    page.goto(KNOWN_HOSTS)
    page.get_by_label("Host", exact=True).fill("169.254.169.254")
    page.get_by_role("button", name="Scan", exact=True).click()
    error = page.locator("#host-error")
    error.wait_for()
    assert "host_key_scan_forbidden" in error.inner_text()
    assert "Fix:" in error.inner_text()
    # The field keeps what was typed, and names its error for assistive technology.
    host = page.get_by_label("Host", exact=True)
    assert host.input_value() == "169.254.169.254"
    assert "host-error" in (host.get_attribute("aria-describedby") or "")
    assert page.get_by_role("heading", name="Keys the host presents").count() == 0
