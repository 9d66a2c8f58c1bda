"""Project settings → SSH keys, in process: the keys with fingerprints and badges, a rotation
started and aborted (the abort asks on a page of its own first), additional keys and key rules
added and deleted after their confirmation pages, errors beside their fields, audit entries as
the API's, viewers read only, and no private key on any of these pages."""

from __future__ import annotations

import pytest

from repolink.accounts import key_audit
from repolink.app import Repolink
from repolink.auth.principal import Role
from support.accountskit import Account, make_account
from support.webkit import signed_in_pages

PAGE = "/ui/projects/acme/settings/keys"


@pytest.fixture(autouse=True)
def owner(app: Repolink) -> Account:
    owner = make_account(app, "owner")
    make_account(app, "viewer")
    app.access.create_project(owner.principal, "Acme", slug="acme")
    app.access.set_member(owner.principal, "acme", "viewer", Role.VIEWER)
    return owner


@pytest.fixture
def private(app: Repolink) -> list[str]:
    """The project connected (no fetch); the lines of its deploy key's private half."""
    saved = app.connections.save("acme", "ssh://git@git.example.com/acme/app.git")
    assert saved.private_key is not None
    text = saved.private_key.to_openssh().decode()
    return [line for line in text.splitlines() if "-----" not in line]


def actions(app: Repolink, owner: Account) -> list[str]:
    return [entry.action for entry in app.audit.entries(owner.principal, project="acme").items]


def test_the_deploy_key_is_listed_unused_with_both_fingerprints(
    app: Repolink, private: list[str]
) -> None:
    [deploy] = app.keys.project_keys("acme")
    with signed_in_pages(app, "viewer") as pages:
        page = pages.get(PAGE)
    assert page.status_code == 200
    assert deploy.fingerprint_sha256 in page.text
    assert deploy.fingerprint_md5 in page.text
    assert "unused" in page.text
    assert "older than 180 days" not in page.text
    assert "Start rotation" not in page.text  # a viewer's page has no forms
    assert "PRIVATE KEY" not in page.text
    assert not any(line in page.text for line in private)


def test_a_rotation_is_started_then_aborted_after_its_confirmation_page(
    app: Repolink, owner: Account, private: list[str]
) -> None:
    with signed_in_pages(app, "owner") as pages:
        started = pages.post(f"{PAGE}/rotate", {}, token_from=PAGE)
        assert started.status_code == 303
        page = pages.get(PAGE)
        question = pages.get(f"{PAGE}/rotate/abort")
        aborted = pages.post(f"{PAGE}/rotate/abort", {}, token_from=f"{PAGE}/rotate/abort")
        after = pages.get(PAGE)
    assert "Rotation started" in page.text
    assert "Complete rotation" in page.text
    assert "pending" in page.text
    assert "Abort the rotation?" in question.text
    assert aborted.status_code == 303
    assert "Rotation aborted" in after.text
    assert "Start rotation" in after.text
    assert [k.state for k in app.keys.project_keys("acme")].count("pending") == 0
    assert not any(line in page.text for line in private)
    assert actions(app, owner)[:2] == [key_audit.KEY_ROTATE_ABORT, key_audit.KEY_ROTATE]


def test_a_viewer_cannot_rotate(app: Repolink, private: list[str]) -> None:
    with signed_in_pages(app, "viewer") as pages:
        refused = pages.post(f"{PAGE}/rotate", {}, token_from=PAGE)
        question = pages.get(f"{PAGE}/rotate/abort")
    assert refused.status_code == 403
    assert question.status_code == 403
    assert [k.state for k in app.keys.project_keys("acme")] == ["active"]


def test_an_additional_key_and_a_rule_added_and_deleted_after_confirming(
    app: Repolink, owner: Account, private: list[str]
) -> None:
    with signed_in_pages(app, "owner") as pages:
        added = pages.post(f"{PAGE}/additional", {"hostname": "git.other.example"}, token_from=PAGE)
        assert added.status_code == 303
        [info] = app.additional_keys.list_keys("acme")
        rule = pages.post(
            f"{PAGE}/rules",
            {"prefix": "git@git.other.example:team/", "key": info.fingerprint_sha256},
            token_from=PAGE,
        )
        assert rule.status_code == 303
        page = pages.get(PAGE)
        assert info.fingerprint_sha256 in page.text
        assert "git.other.example" in page.text
        [stored_rule] = app.key_rules.list_rules("acme")
        # The key is in use by the rule: its deletion is refused, the error on the page.
        in_use = pages.post(
            f"{PAGE}/additional/{info.id}/delete",
            {},
            token_from=f"{PAGE}/additional/{info.id}/delete",
        )
        assert in_use.status_code == 409
        assert "additional_key_in_use" in in_use.text
        question = pages.get(f"{PAGE}/rules/{stored_rule.id}/delete")
        assert "Delete the key rule for this URL prefix?" in question.text
        assert stored_rule.prefix in question.text
        gone = pages.post(f"{PAGE}/rules/{stored_rule.id}/delete", {}, token_from=PAGE)
        assert gone.status_code == 303
        deleted = pages.post(f"{PAGE}/additional/{info.id}/delete", {}, token_from=PAGE)
        assert deleted.status_code == 303
    assert app.key_rules.list_rules("acme") == []
    assert app.additional_keys.list_keys("acme") == []
    assert actions(app, owner)[:4] == [
        key_audit.ADDITIONAL_KEY_DELETE,
        key_audit.KEY_RULE_DELETE,
        key_audit.KEY_RULE_CREATE,
        key_audit.ADDITIONAL_KEY_CREATE,
    ]


def test_errors_are_shown_beside_their_fields_and_unknown_ids_are_404(
    app: Repolink, private: list[str]
) -> None:
    with signed_in_pages(app, "owner") as pages:
        bad_rule = pages.post(
            f"{PAGE}/rules", {"prefix": "not a url", "key": "deploy"}, token_from=PAGE
        )
        bad_host = pages.post(f"{PAGE}/additional", {"hostname": "a b:c:d"}, token_from=PAGE)
        missing_key = pages.get(f"{PAGE}/additional/x/delete")
        missing_rule = pages.get(f"{PAGE}/rules/x/delete")
    assert bad_rule.status_code == 400
    assert 'id="prefix-error"' in bad_rule.text
    assert "not a url" in bad_rule.text  # the typed prefix is kept
    assert bad_host.status_code == 400
    assert 'id="hostname-error"' in bad_host.text
    assert missing_key.status_code == 404
    assert missing_rule.status_code == 404
