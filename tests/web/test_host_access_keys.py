"""Repository settings → Access keys of the built-in host, in process: keys added through the
form reach the host service, each named key error is shown beside the key field (never the
pasted text), a label and the write permission change, a key is deleted, and only site admins
see any of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from repolink.app import Repolink
from support.accountskit import make_account
from support.hostkit import KeyPair, generate_key_pair
from support.keytexts import PUTTY
from support.webkit import signed_in_pages

PAGE = "/ui/host/repositories/acme/website/access-keys"


@pytest.fixture(autouse=True)
def _host(app: Repolink) -> None:
    make_account(app, "root", site_admin=True)
    make_account(app, "someone")
    app.host.create_repository("acme", "website")


@pytest.fixture
def key(tmp_path: Path) -> KeyPair:
    return generate_key_pair(tmp_path, "ci")


def test_a_key_added_on_the_page_is_a_read_only_access_key(app: Repolink, key: KeyPair) -> None:
    with signed_in_pages(app, "root") as pages:
        added = pages.post(PAGE, {"label": "ci runner", "key": key.public_line}, token_from=PAGE)
        assert added.status_code == 303
        assert added.headers["location"] == PAGE
        listed = pages.get(PAGE)
    [stored] = app.host.list_access_keys("acme", "website")
    assert (stored.label, stored.read_only) == ("ci runner", True)
    assert stored.fingerprint_sha256 == key.fingerprint
    assert "Access key ci runner added (read-only)." in listed.text
    assert key.fingerprint in listed.text
    assert "read-only" in listed.text


def test_write_ticked_makes_a_read_and_write_key(app: Repolink, key: KeyPair) -> None:
    with signed_in_pages(app, "root") as pages:
        added = pages.post(
            PAGE, {"label": "deployer", "key": key.public_line, "writable": "on"}, token_from=PAGE
        )
    assert added.status_code == 303
    [stored] = app.host.list_access_keys("acme", "website")
    assert stored.read_only is False


@pytest.mark.parametrize(
    ("pasted", "code"),
    [
        (PUTTY, "key_putty_format"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOd3FSFdQTAvM3dyfoU4", "key_truncated"),
    ],
)
def test_a_bad_key_is_named_beside_the_key_field(app: Repolink, pasted: str, code: str) -> None:
    with signed_in_pages(app, "root") as pages:
        shown = pages.post(PAGE, {"label": "ci", "key": pasted}, token_from=PAGE)
    assert shown.status_code == 400
    error = shown.text.split('id="key-error"', 1)[1].split("</div>", 1)[0]
    assert code in error
    assert "Fix:" in error
    assert 'aria-describedby="key-help key-error"' in shown.text
    assert app.host.list_access_keys("acme", "website") == []


def test_a_pasted_private_key_is_named_and_never_shown_back(app: Repolink, key: KeyPair) -> None:
    private = key.private_path.read_text()
    with signed_in_pages(app, "root") as pages:
        shown = pages.post(PAGE, {"label": "my laptop", "key": private}, token_from=PAGE)
    assert shown.status_code == 400
    error = shown.text.split('id="key-error"', 1)[1].split("</div>", 1)[0]
    assert "key_is_private" in error
    body = private.splitlines()[1]
    assert body[:24] not in shown.text
    assert "my laptop" in shown.text  # the label is kept; the key never is


def test_the_same_key_twice_is_access_key_duplicate_with_its_fix(
    app: Repolink, key: KeyPair
) -> None:
    app.host.add_access_key("acme", "website", key.public_line, label="first")
    with signed_in_pages(app, "root") as pages:
        shown = pages.post(PAGE, {"label": "second", "key": key.public_line}, token_from=PAGE)
    assert shown.status_code == 400  # as the API answers it (Bitbucket's status)
    error = shown.text.split('id="key-error"', 1)[1].split("</div>", 1)[0]
    assert "access_key_duplicate" in error
    assert "already an access key" in error
    assert "update that access key" in error


def test_an_empty_label_is_named_beside_the_label(app: Repolink, key: KeyPair) -> None:
    with signed_in_pages(app, "root") as pages:
        shown = pages.post(PAGE, {"label": " ", "key": key.public_line}, token_from=PAGE)
    assert shown.status_code == 400
    assert "label_invalid" in shown.text.split('id="label-error"', 1)[1].split("</div>", 1)[0]


def test_the_label_and_write_permission_change_on_the_key_page(app: Repolink, key: KeyPair) -> None:
    stored = app.host.add_access_key("acme", "website", key.public_line, label="old")
    edit = f"{PAGE}/{stored.id}"
    with signed_in_pages(app, "root") as pages:
        page = pages.get(edit)
        assert page.status_code == 200
        assert stored.fingerprint_md5 in page.text
        assert stored.key in page.text  # the public key, with its copy button
        saved = pages.post(edit, {"label": "new", "writable": "on"}, token_from=edit)
        assert saved.status_code == 303
        assert app.host.get_access_key("acme", "website", stored.id).read_only is False
        pages.post(edit, {"label": "new"}, token_from=edit)
        refused = pages.post(edit, {"label": "", "writable": "on"}, token_from=edit)
    changed = app.host.get_access_key("acme", "website", stored.id)
    assert (changed.label, changed.read_only) == ("new", True)
    assert refused.status_code == 400
    assert "label_invalid" in refused.text


def test_a_key_is_deleted_after_its_confirmation_page(app: Repolink, key: KeyPair) -> None:
    stored = app.host.add_access_key("acme", "website", key.public_line, label="gone")
    question = f"{PAGE}/{stored.id}/delete"
    with signed_in_pages(app, "root") as pages:
        listed = pages.get(PAGE)
        assert f'href="{question}"' in listed.text
        asked = pages.get(question)
        assert asked.status_code == 200
        assert "Delete the access key gone?" in asked.text
        assert stored.fingerprint_sha256 in asked.text
        assert app.host.list_access_keys("acme", "website") != []  # asking deletes nothing
        deleted = pages.post(question, token_from=question)
        again = pages.post(f"{PAGE}/{stored.id}/delete", token_from=PAGE)
    assert deleted.status_code == 303
    assert app.host.list_access_keys("acme", "website") == []
    assert again.status_code == 404


@pytest.mark.parametrize("key_id", ["999", "x", "1" * 40, str(2**31)])
def test_an_unknown_key_is_the_404_page(app: Repolink, key_id: str) -> None:
    with signed_in_pages(app, "root") as pages:
        shown = pages.get(f"{PAGE}/{key_id}")
    assert shown.status_code == 404
    assert "access_key_not_found" in shown.text


def test_an_unknown_repository_is_the_404_page(app: Repolink) -> None:
    with signed_in_pages(app, "root") as pages:
        shown = pages.get("/ui/host/repositories/acme/nothing/access-keys")
    assert shown.status_code == 404
    assert "repository_not_found" in shown.text


def test_someone_who_is_no_site_admin_gets_the_403_page(app: Repolink, key: KeyPair) -> None:
    with signed_in_pages(app, "someone") as pages:
        shown = pages.get(PAGE)
        token_from = "/ui/account"
        posted = pages.post(PAGE, {"label": "x", "key": key.public_line}, token_from=token_from)
    assert shown.status_code == 403
    assert "site_admin_required" in shown.text
    assert posted.status_code == 403
    assert app.host.list_access_keys("acme", "website") == []


def test_a_form_without_its_csrf_token_is_refused(app: Repolink, key: KeyPair) -> None:
    with signed_in_pages(app, "root") as pages:
        posted = pages.post(PAGE, {"label": "x", "key": key.public_line})
    assert posted.status_code == 403
    assert "csrf_token_invalid" in posted.text
    assert app.host.list_access_keys("acme", "website") == []
