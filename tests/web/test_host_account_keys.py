"""Account keys of a workspace of the built-in host, in process: added through the form (the
key checks' named errors beside the field, never the pasted text), listed, deleted; only an
existing workspace has the page, and only site admins see it."""

from __future__ import annotations

from pathlib import Path

import pytest

from repolink.app import Repolink
from support.accountskit import make_account
from support.hostkit import KeyPair, generate_key_pair
from support.webkit import signed_in_pages

PAGE = "/ui/host/workspaces/acme/account-keys"


@pytest.fixture(autouse=True)
def _host(app: Repolink) -> None:
    make_account(app, "root", site_admin=True)
    make_account(app, "someone")
    app.host.create_repository("acme", "website")


@pytest.fixture
def key(tmp_path: Path) -> KeyPair:
    return generate_key_pair(tmp_path, "alice")


def test_a_key_added_on_the_page_is_an_account_key(app: Repolink, key: KeyPair) -> None:
    with signed_in_pages(app, "root") as pages:
        added = pages.post(PAGE, {"label": "alice laptop", "key": key.public_line}, token_from=PAGE)
        listed = pages.get(PAGE)
    assert added.status_code == 303
    [stored] = app.host.list_account_keys("acme")
    assert (stored.label, stored.fingerprint_sha256) == ("alice laptop", key.fingerprint)
    assert key.fingerprint in listed.text
    assert "Account key alice laptop added" in listed.text


def test_a_private_key_is_named_beside_the_field_and_never_shown(
    app: Repolink, key: KeyPair
) -> None:
    private = key.private_path.read_text()
    with signed_in_pages(app, "root") as pages:
        shown = pages.post(PAGE, {"label": "oops", "key": private}, token_from=PAGE)
    assert shown.status_code == 400
    assert "key_is_private" in shown.text.split('id="key-error"', 1)[1]
    assert private.splitlines()[1][:24] not in shown.text
    assert app.host.list_account_keys("acme") == []


def test_an_access_key_cannot_also_be_an_account_key(app: Repolink, key: KeyPair) -> None:
    app.host.add_access_key("acme", "website", key.public_line, label="machine")
    with signed_in_pages(app, "root") as pages:
        shown = pages.post(PAGE, {"label": "alice", "key": key.public_line}, token_from=PAGE)
    assert shown.status_code == 409
    assert "key_is_access_key" in shown.text.split('id="key-error"', 1)[1]


def test_a_key_is_deleted_after_its_confirmation_page(app: Repolink, key: KeyPair) -> None:
    stored = app.host.add_account_key("acme", key.public_line, label="gone")
    question = f"{PAGE}/{stored.id}/delete"
    with signed_in_pages(app, "root") as pages:
        assert f'href="{question}"' in pages.get(PAGE).text
        asked = pages.get(question)
        assert asked.status_code == 200
        assert "Delete the account key gone?" in asked.text
        assert stored.fingerprint_sha256 in asked.text
        assert pages.get(f"{PAGE}/999/delete").status_code == 404
        assert app.host.list_account_keys("acme") != []  # asking deletes nothing
        deleted = pages.post(question, token_from=question)
        again = pages.post(f"{PAGE}/{stored.id}/delete", token_from=PAGE)
        bad = pages.post(f"{PAGE}/x/delete", token_from=PAGE)
    assert deleted.status_code == 303
    assert app.host.list_account_keys("acme") == []
    assert again.status_code == 404
    assert bad.status_code == 404


def test_an_unknown_workspace_is_the_404_page_and_is_not_created(
    app: Repolink, key: KeyPair
) -> None:
    with signed_in_pages(app, "root") as pages:
        shown = pages.get("/ui/host/workspaces/nobody/account-keys")
        posted = pages.post(
            "/ui/host/workspaces/nobody/account-keys",
            {"label": "x", "key": key.public_line},
            token_from=PAGE,
        )
    assert shown.status_code == 404
    assert "workspace_not_found" in shown.text
    assert posted.status_code == 404
    assert app.host.list_workspaces() == ["acme"]


def test_someone_who_is_no_site_admin_gets_the_403_page(app: Repolink) -> None:
    with signed_in_pages(app, "someone") as pages:
        shown = pages.get(PAGE)
    assert shown.status_code == 403
