"""Repository settings → Webhooks of the built-in host, in process: a hook added through the
form (the network policy's refusal and the URL checks beside the URL field), its secret never
shown (only whether one is set), its recent deliveries, deleted by its button; site admins
only."""

from __future__ import annotations

import pytest

from repolink.app import Repolink
from repolink.host.webhooks import enqueue_push_event
from support.accountskit import make_account
from support.webkit import signed_in_pages

PAGE = "/ui/host/repositories/acme/website/webhooks"
SECRET = "a-secret-of-the-receiver-4242"


@pytest.fixture(autouse=True)
def _host(app: Repolink) -> None:
    make_account(app, "root", site_admin=True)
    make_account(app, "someone")
    app.host.create_repository("acme", "website")


def test_a_hook_added_on_the_page_keeps_its_secret_to_itself(app: Repolink) -> None:
    url = "https://ci.example.com/hooks/bitbucket"
    with signed_in_pages(app, "root") as pages:
        added = pages.post(
            PAGE, {"url": url, "secret": SECRET, "description": "ci"}, token_from=PAGE
        )
        listed = pages.get(PAGE)
    assert added.status_code == 303
    [hook] = app.hooks.list_hooks("acme", "website")
    assert (hook.url, hook.secret_set, hook.description) == (url, True, "ci")
    assert url in listed.text
    assert SECRET not in listed.text
    assert "never shown" in listed.text
    assert "No delivery yet" in listed.text


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://10.1.2.3/hook", "webhook_url_forbidden"),
        ("ftp://ci.example.com/hook", "hook_url_invalid"),
    ],
)
def test_a_refused_url_is_named_beside_the_url_field(app: Repolink, url: str, code: str) -> None:
    with signed_in_pages(app, "root") as pages:
        shown = pages.post(PAGE, {"url": url, "secret": SECRET}, token_from=PAGE)
    assert shown.status_code == 400
    error = shown.text.split('id="url-error"', 1)[1].split("</div>", 1)[0]
    assert code in error and "Fix:" in error
    assert SECRET not in shown.text
    assert app.hooks.list_hooks("acme", "website") == []


def test_recent_deliveries_are_listed_under_their_hook(app: Repolink) -> None:
    app.hooks.add_hook("acme", "website", "https://ci.example.com/hook")
    repo = app.host.get_repository("acme", "website")
    with app.store.session() as session:
        enqueue_push_event(session, repo.id, {"push": {"changes": []}})
    with signed_in_pages(app, "root") as pages:
        listed = pages.get(PAGE)
    assert "Recent deliveries" in listed.text
    assert "repo:push" in listed.text
    assert ">pending</span>" in listed.text


def test_a_hook_is_deleted_after_its_confirmation_page(app: Repolink) -> None:
    hook = app.hooks.add_hook("acme", "website", "https://ci.example.com/hook")
    question = f"{PAGE}/{hook.uuid}/delete"
    with signed_in_pages(app, "root") as pages:
        assert f'href="{question}"' in pages.get(PAGE).text
        asked = pages.get(question)
        assert asked.status_code == 200
        assert "Delete the webhook to this URL?" in asked.text
        assert "https://ci.example.com/hook" in asked.text
        assert f'action="{question}"' in asked.text
        assert app.hooks.list_hooks("acme", "website") != []  # asking deletes nothing
        deleted = pages.post(question, token_from=question)
        again = pages.post(f"{PAGE}/{hook.uuid}/delete", token_from=PAGE)
    assert deleted.status_code == 303
    assert app.hooks.list_hooks("acme", "website") == []
    assert again.status_code == 404


def test_someone_who_is_no_site_admin_gets_the_403_page(app: Repolink) -> None:
    with signed_in_pages(app, "someone") as pages:
        assert pages.get(PAGE).status_code == 403
