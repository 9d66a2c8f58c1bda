"""Project settings → Webhooks, in process: the receiver URLs, the secret for admins only
(made on the first visit, audited), regenerated after its confirmation page (the old one
replaced, audited), and viewers see URLs and deliveries but never the secret."""

from __future__ import annotations

import pytest

from repolink.app import Repolink
from repolink.auth.principal import Role
from support.accountskit import Account, make_account
from support.webkit import signed_in_pages

PAGE = "/ui/projects/acme/settings/webhooks"


@pytest.fixture(autouse=True)
def owner(app: Repolink) -> Account:
    owner = make_account(app, "owner")
    make_account(app, "viewer")
    app.access.create_project(owner.principal, "Acme", slug="acme")
    app.access.set_member(owner.principal, "acme", "viewer", Role.VIEWER)
    return owner


def actions(app: Repolink, owner: Account) -> list[str]:
    return [entry.action for entry in app.audit.entries(owner.principal, project="acme").items]


def test_an_admin_sees_the_urls_and_the_secret_made_on_the_first_visit(
    app: Repolink, owner: Account
) -> None:
    with signed_in_pages(app, "owner") as pages:
        page = pages.get(PAGE)
    secret = app.webhooks_in.secret("acme").value
    assert page.status_code == 200
    assert "/hooks/github/acme" in page.text
    assert "/hooks/gitlab/acme" in page.text
    assert secret in page.text
    assert "Reveal secret" in page.text
    assert actions(app, owner)[0] == "webhook_secret.create"


def test_a_viewer_never_gets_the_secret_nor_regenerates_it(app: Repolink) -> None:
    secret = app.webhooks_in.secret("acme").value
    with signed_in_pages(app, "viewer") as pages:
        page = pages.get(PAGE)
        question = pages.get(f"{PAGE}/secret")
        refused = pages.post(f"{PAGE}/secret", {}, token_from=PAGE)
    assert page.status_code == 200
    assert "/hooks/github/acme" in page.text
    assert secret not in page.text
    assert "Regenerate" not in page.text
    assert question.status_code == 403
    assert refused.status_code == 403
    assert app.webhooks_in.secret("acme").value == secret


def test_regenerate_asks_first_then_replaces_the_secret(app: Repolink, owner: Account) -> None:
    old = app.webhooks_in.secret("acme").value
    with signed_in_pages(app, "owner") as pages:
        question = pages.get(f"{PAGE}/secret")
        made = pages.post(f"{PAGE}/secret", {}, token_from=f"{PAGE}/secret")
        page = pages.get(PAGE)
    new = app.webhooks_in.secret("acme").value
    assert "Make a new webhook secret?" in question.text
    assert old not in question.text
    assert made.status_code == 303
    assert new != old
    assert new in page.text and old not in page.text
    assert "New webhook secret made" in page.text
    assert actions(app, owner)[0] == "webhook_secret.rotate"


def test_a_stranger_gets_the_404_page(app: Repolink) -> None:
    make_account(app, "stranger")
    with signed_in_pages(app, "stranger") as pages:
        assert pages.get(PAGE).status_code == 404
        assert pages.get(f"{PAGE}/secret").status_code == 404
