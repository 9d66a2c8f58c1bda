"""Repository settings → Access keys of the built-in host in a real browser (issue 12), driven
as a person does: a machine's key added on the page clones the repository over the embedded
SSH host with real git (read-only: its push is refused until write is allowed on the key's
page); a pasted private key, a truncated key and a ``.ppk`` file are each named beside the
key field; delete asks first, and a deleted key reaches the repository no more. Set-up (the
repository and its commits) goes through the host API and git."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer, check_page
from support.hostkit import GitClient, KeyPair, generate_key_pair
from support.keytexts import PUTTY

if TYPE_CHECKING:
    from playwright.sync_api import Page


def hosted(web_server: WebServer, root: Path, workspace: str, slug: str) -> list[str]:
    """``workspace/slug`` on the server's host with two commits; the commits, oldest first."""
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        _, commits = flowkit.hosted_repository(
            api, web_server.service, root, workspace=workspace, slug=slug
        )
    return commits


def machine(web_server: WebServer, root: Path) -> GitClient:
    """A machine with a key pair of its own that the host knows nothing of yet."""
    key: KeyPair = generate_key_pair(root / "machine-keys", "machine")
    known_hosts = flowkit.scanned_known_hosts(web_server.service, root / "machine_known_hosts")
    return GitClient(root / "machine-home", key, known_hosts, web_server.service.ssh_port or 0)


def open_access_keys(page: Page, full_name: str) -> None:
    page.goto(paths.HOST_REPOSITORIES)
    page.get_by_role("link", name=full_name).click()
    page.get_by_role("heading", name="Access keys").wait_for()


def add_key(page: Page, label: str, key_text: str) -> None:
    page.get_by_label("Label").fill(label)
    page.get_by_label("Key", exact=True).fill(key_text)
    page.get_by_role("button", name="Add key").click()
    page.wait_for_load_state()


def test_a_key_added_on_the_page_clones_over_the_embedded_ssh_host(
    admin_page: Page, web_server: WebServer, tmp_path: Path
) -> None:
    page = admin_page
    commits = hosted(web_server, tmp_path, "pages", "clone-me")
    ci = machine(web_server, tmp_path)
    open_access_keys(page, "pages/clone-me")
    # The key is unknown yet: the machine is refused.
    clone_url = page.locator("#clone-url").inner_text()
    assert clone_url == f"ssh://git@127.0.0.1:{web_server.service.ssh_port}/pages/clone-me.git"
    refused = ci.git("clone", clone_url, str(tmp_path / "refused"))
    assert refused.returncode != 0

    add_key(page, "ci runner", ci.key.public_line)
    notice = page.get_by_text("Access key ci runner added (read-only).")
    notice.wait_for()
    row = page.get_by_role("row", name="ci runner")
    assert ci.key.fingerprint in row.inner_text()
    assert "read-only" in row.inner_text()
    check_page(page, "host-access-keys")

    cloned = ci.git("clone", clone_url, str(tmp_path / "clone"))
    assert cloned.returncode == 0, cloned.stderr
    head = ci.git("-C", str(tmp_path / "clone"), "rev-parse", "HEAD")
    assert head.stdout.strip() == commits[-1]
    (tmp_path / "clone" / "new.txt").write_text("from the machine\n")
    ci.git("-C", str(tmp_path / "clone"), "add", "new.txt")
    ci.git("-C", str(tmp_path / "clone"), "commit", "-qm", "machine commit")
    pushed = ci.git("-C", str(tmp_path / "clone"), "push", "origin", "main")
    assert pushed.returncode != 0  # read-only

    # Write allowed on the key's page: the same push goes through.
    row.get_by_role("link", name="Edit").click()
    page.get_by_label("Allow write (push)").check()
    check_page(page, "host-access-key")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Access key ci runner saved.").wait_for()
    assert "read and write" in page.get_by_role("row", name="ci runner").inner_text()
    pushed = ci.git("-C", str(tmp_path / "clone"), "push", "origin", "main")
    assert pushed.returncode == 0, pushed.stderr


def test_delete_asks_first_and_then_the_key_reaches_nothing(
    admin_page: Page, web_server: WebServer, tmp_path: Path
) -> None:
    page = admin_page
    hosted(web_server, tmp_path, "pages", "delete-me")
    ci = machine(web_server, tmp_path)
    open_access_keys(page, "pages/delete-me")
    add_key(page, "doomed", ci.key.public_line)
    page.get_by_text("Access key doomed added (read-only).").wait_for()
    clone_url = page.locator("#clone-url").inner_text()

    # Delete opens a page that asks (no script, no dialog); Cancel keeps the key.
    page.get_by_role("row", name="doomed").get_by_role("link", name="Delete").click()
    page.get_by_text("Delete the access key doomed?").wait_for()
    page.get_by_role("link", name="Cancel").click()
    assert page.get_by_role("row", name="doomed").count() == 1  # cancelled: kept

    page.get_by_role("row", name="doomed").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete access key").click()
    page.get_by_text("Access key doomed deleted").wait_for()
    assert page.get_by_role("row", name="doomed").count() == 0
    refused = ci.git("clone", clone_url, str(tmp_path / "after-delete"))
    assert refused.returncode != 0


@pytest.mark.parametrize(
    ("what", "code"),
    [
        ("private", "key_is_private"),
        ("truncated", "key_truncated"),
        ("ppk", "key_putty_format"),
    ],
)
def test_a_wrong_key_is_named_beside_the_key_field(
    admin_page: Page, web_server: WebServer, tmp_path: Path, what: str, code: str
) -> None:
    page = admin_page
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        # PUT: created by the first parameter, left as it is by the others.
        flowkit.ok(api.put(f"{flowkit.HOST_API}/repositories/pages/errors", json={}), 200, 201)
    key = generate_key_pair(tmp_path, "pasted")
    pasted = {
        "private": key.private_path.read_text(),
        "truncated": key.public_line[:60],
        "ppk": PUTTY,
    }[what]
    open_access_keys(page, "pages/errors")
    add_key(page, f"wrong {what}", pasted)

    error = page.locator("#key-error")
    error.wait_for()
    assert code in error.inner_text()
    assert "Fix:" in error.inner_text()
    field = page.get_by_label("Key", exact=True)
    assert field.get_attribute("aria-invalid") == "true"
    assert field.input_value() == ""  # what was pasted is never sent back
    assert page.get_by_label("Label").input_value() == f"wrong {what}"
    check_page(page, f"host-access-keys-error-{what}")
