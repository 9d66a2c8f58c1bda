"""Project settings → Checkout keys, in process: a user key and a deploy key added through the
page (each audited as through the API), both fingerprints and the public key shown, the
preferred key marked, delete by the key's user or an admin only, errors beside the form, and
no private key on the page."""

from __future__ import annotations

import pytest

from repolink.app import Repolink
from repolink.auth.principal import Role
from repolink.web import paths
from support.accountskit import Account, make_account
from support.webkit import signed_in_pages

PAGE = "/ui/projects/acme/settings/checkout-keys"


@pytest.fixture(autouse=True)
def owner(app: Repolink) -> Account:
    owner = make_account(app, "owner")
    for name in ("member", "viewer", "other"):
        make_account(app, name)
    app.access.create_project(owner.principal, "Acme", slug="acme")
    app.access.set_member(owner.principal, "acme", "member", Role.MEMBER)
    app.access.set_member(owner.principal, "acme", "other", Role.MEMBER)
    app.access.set_member(owner.principal, "acme", "viewer", Role.VIEWER)
    return owner


def connect(app: Repolink) -> str:
    """The project connected (no fetch); the deploy key's private key in OpenSSH text."""
    saved = app.connections.save("acme", "ssh://git@git.example.com/acme/app.git")
    assert saved.private_key is not None
    return saved.private_key.to_openssh().decode()


def private_lines(private: str) -> list[str]:
    return [line for line in private.splitlines() if "-----" not in line]


def test_a_user_key_added_on_the_page_is_preferred_and_shown_with_both_fingerprints(
    app: Repolink, owner: Account
) -> None:
    private = connect(app)
    with signed_in_pages(app, "member") as pages:
        added = pages.post(PAGE, {"type": "user-key"}, token_from=PAGE)
        assert added.status_code == 303
        assert added.headers["location"] == PAGE
        shown = pages.get(PAGE)
    keys = app.checkout_keys.list_keys("acme")
    [user_key] = [key for key in keys if key.kind == "user-key"]
    assert user_key.preferred
    assert "New user key added." in shown.text
    assert user_key.md5_hex in shown.text
    assert user_key.fingerprint_sha256 in shown.text
    assert user_key.public_key in shown.text
    assert "Copy public key" in shown.text
    assert "preferred" in shown.text
    assert "(yours)" in shown.text
    assert "PRIVATE KEY" not in shown.text
    assert not any(line in shown.text for line in private_lines(private))
    entries = app.audit.entries(owner.principal, project="acme").items
    [entry] = [e for e in entries if e.action == "checkout_key.create"]
    assert entry.target == user_key.fingerprint_sha256


def test_a_deploy_key_added_by_an_admin_is_pending_and_a_member_cannot_add_one(
    app: Repolink,
) -> None:
    connect(app)
    with signed_in_pages(app, "member") as pages:
        page = pages.get(PAGE)
        assert "Add deploy key" not in page.text
        refused = pages.post(PAGE, {"type": "deploy-key"}, token_from=PAGE)
        assert refused.status_code == 403
    assert [k.pending for k in app.checkout_keys.list_keys("acme")] == [False]
    with signed_in_pages(app, "owner") as pages:
        added = pages.post(PAGE, {"type": "deploy-key"}, token_from=PAGE)
        assert added.status_code == 303
        shown = pages.get(PAGE)
    assert sorted(k.pending for k in app.checkout_keys.list_keys("acme")) == [False, True]
    assert "pending rotation" in shown.text
    # A second one while the first is pending: the service's error on the page, not a 500.
    with signed_in_pages(app, "owner") as pages:
        again = pages.post(PAGE, {"type": "deploy-key"}, token_from=PAGE)
    assert again.status_code == 409
    assert "rotation_pending" in again.text


def test_a_viewer_sees_the_keys_and_no_form(app: Repolink) -> None:
    connect(app)
    with signed_in_pages(app, "viewer") as pages:
        page = pages.get(PAGE)
        refused = pages.post(PAGE, {"type": "user-key"}, token_from=PAGE)
    [deploy] = app.checkout_keys.list_keys("acme")
    assert page.status_code == 200
    assert deploy.public_key in page.text
    assert "Add user key" not in page.text
    assert ">Delete<" not in page.text
    assert refused.status_code == 403
    assert app.checkout_keys.list_keys("acme") == [deploy]


def test_a_user_key_is_deleted_by_its_user_not_by_another_member(app: Repolink) -> None:
    connect(app)
    with signed_in_pages(app, "member") as pages:
        pages.post(PAGE, {"type": "user-key"}, token_from=PAGE)
    [user_key] = [k for k in app.checkout_keys.list_keys("acme") if k.kind == "user-key"]
    form = {"fingerprint": user_key.fingerprint_sha256}
    with signed_in_pages(app, "other") as pages:
        refused = pages.post(f"{PAGE}/delete", form, token_from=PAGE)
    assert refused.status_code == 403
    assert "role_required" in refused.text
    with signed_in_pages(app, "member") as pages:
        deleted = pages.post(f"{PAGE}/delete", form, token_from=PAGE)
        assert deleted.status_code == 303
        shown = pages.get(PAGE)
    assert [k.kind for k in app.checkout_keys.list_keys("acme")] == ["deploy-key"]
    assert f"The user key {user_key.fingerprint_sha256} was deleted." in shown.text


def test_the_only_deploy_key_is_kept_with_the_error_on_the_page(app: Repolink) -> None:
    connect(app)
    [deploy] = app.checkout_keys.list_keys("acme")
    with signed_in_pages(app, "owner") as pages:
        refused = pages.post(f"{PAGE}/delete", {"fingerprint": deploy.md5_hex}, token_from=PAGE)
        unknown = pages.post(f"{PAGE}/delete", {"fingerprint": "nonsense"}, token_from=PAGE)
    assert refused.status_code == 409
    assert "deploy_key_required" in refused.text
    assert "Fix:" in refused.text
    assert unknown.status_code in (400, 404)
    assert app.checkout_keys.list_keys("acme") == [deploy]


def test_a_stranger_gets_the_404_page(app: Repolink) -> None:
    connect(app)
    make_account(app, "stranger")
    with signed_in_pages(app, "stranger") as pages:
        assert pages.get(PAGE).status_code == 404


def test_a_delete_asks_on_a_page_of_its_own_and_works_without_a_script(app: Repolink) -> None:
    connect(app)
    with signed_in_pages(app, "member") as pages:
        pages.post(PAGE, {"type": "user-key"}, token_from=PAGE)
    [user_key] = [k for k in app.checkout_keys.list_keys("acme") if k.kind == "user-key"]
    question = paths.project("acme", "settings", "checkout-keys", user_key.md5_hex, "delete")
    with signed_in_pages(app, "member") as pages:
        listed = pages.get(PAGE).text
        assert f'href="{question}"' in listed
        assert 'data-confirm="Delete' not in listed
        asked = pages.get(question)
        assert asked.status_code == 200
        assert "Please confirm" in asked.text
        assert user_key.fingerprint_sha256 in asked.text
        assert f'action="{PAGE}/delete"' in asked.text
        assert user_key in app.checkout_keys.list_keys("acme")  # asking deleted nothing
        # The confirmation page's own form, as a browser without scripts sends it.
        field = f'name="fingerprint" value="{user_key.fingerprint_sha256}"'
        assert field in asked.text
        deleted = pages.post(
            f"{PAGE}/delete", {"fingerprint": user_key.fingerprint_sha256}, token_from=question
        )
        assert deleted.status_code == 303
    assert [k.kind for k in app.checkout_keys.list_keys("acme")] == ["deploy-key"]


def test_the_delete_question_is_only_for_who_may_delete(app: Repolink) -> None:
    connect(app)
    with signed_in_pages(app, "member") as pages:
        pages.post(PAGE, {"type": "user-key"}, token_from=PAGE)
    keys = {k.kind: k for k in app.checkout_keys.list_keys("acme")}
    user_key, deploy = keys["user-key"], keys["deploy-key"]
    with signed_in_pages(app, "other") as pages:
        assert pages.get(f"{PAGE}/{user_key.md5_hex}/delete").status_code == 403
        assert pages.get(f"{PAGE}/{deploy.md5_hex}/delete").status_code == 403
        assert pages.get(f"{PAGE}/00:11/delete").status_code in (400, 404)
    with signed_in_pages(app, "viewer") as pages:
        assert pages.get(f"{PAGE}/{user_key.md5_hex}/delete").status_code == 403
    with signed_in_pages(app, "owner") as pages:
        assert pages.get(f"{PAGE}/{user_key.md5_hex}/delete").status_code == 200
        assert pages.get(f"{PAGE}/{deploy.md5_hex}/delete").status_code == 200
    make_account(app, "stranger")
    with signed_in_pages(app, "stranger") as pages:
        assert pages.get(f"{PAGE}/{deploy.md5_hex}/delete").status_code == 404
