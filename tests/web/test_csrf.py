"""Forged form posts are refused (in process): without the session's CSRF token, with another
session's, from another origin, with no origin at all — each with a page naming the error's
code, message and fix, and nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN
from repolink.settings import Settings
from repolink.store import Store
from support.accountskit import FAST_HASHER, make_account
from support.webkit import PageClient, csrf_token, page_client, signed_in_pages


@pytest.fixture
def alice(app: Repolink) -> Iterator[PageClient]:
    make_account(app, "alice")
    make_account(app, "mallory")
    with signed_in_pages(app, "alice") as pages:
        yield pages


def _projects(app: Repolink) -> list[str]:
    return [project.slug for project in app.access.visible_projects(LOCAL_ADMIN)]


def _refusal(response_text: str) -> str:
    return response_text.split('class="error-code">', 1)[1].split("<", 1)[0]


def test_a_form_without_its_token_is_refused_with_the_fix(alice: PageClient, app: Repolink) -> None:
    response = alice.post("/ui/projects/new", {"name": "Forged"})
    assert response.status_code == 403
    assert _refusal(response.text) == "csrf_token_invalid"
    assert "reload the page and send the form again" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert _projects(app) == []


def test_another_sessions_token_is_refused(alice: PageClient, app: Repolink) -> None:
    with signed_in_pages(app, "mallory") as mallory:
        token = csrf_token(mallory.get("/ui/projects/new").text)
    response = alice.post("/ui/projects/new", {"name": "Forged", "csrf_token": token})
    assert (response.status_code, _refusal(response.text)) == (403, "csrf_token_invalid")
    assert _projects(app) == []


def test_the_sign_in_pages_token_is_no_good_once_signed_in(
    alice: PageClient, app: Repolink
) -> None:
    presession = "a-token-planted-in-a-cookie"
    alice.client.cookies.set("repolink_csrf", presession)
    response = alice.post("/ui/projects/new", {"name": "Forged", "csrf_token": presession})
    assert (response.status_code, _refusal(response.text)) == (403, "csrf_token_invalid")


@pytest.mark.parametrize(
    ("headers", "origin"),
    [
        ({}, "https://evil.example"),
        ({"Referer": "https://evil.example/page"}, None),
        ({}, "null"),
        ({}, None),  # neither Origin nor Referer
        ({}, "http://testserver.evil.example"),
    ],
)
def test_a_form_from_another_origin_is_refused_even_with_its_token(
    alice: PageClient, app: Repolink, headers: dict[str, str], origin: str | None
) -> None:
    response = alice.post(
        "/ui/projects/new",
        {"name": "Forged"},
        token_from="/ui/projects/new",
        origin=origin,
        headers=headers,
    )
    assert (response.status_code, _refusal(response.text)) == (403, "origin_refused")
    assert "send the form from there" in response.text
    assert _projects(app) == []


def test_a_referer_of_this_server_will_do_without_origin(alice: PageClient, app: Repolink) -> None:
    response = alice.post(
        "/ui/projects/new",
        {"name": "Real"},
        token_from="/ui/projects/new",
        origin=None,
        headers={"Referer": "http://testserver/ui/projects/new"},
    )
    assert response.status_code == 303
    assert _projects(app) == ["real"]


def test_the_public_url_is_the_only_origin_behind_a_proxy(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", public_url="https://repolink.example.com")
    with (
        Store.open(settings) as store,
        Repolink(settings, store=store, password_hasher=FAST_HASHER) as app,
    ):
        make_account(app, "alice")
        # The proxy speaks plain HTTP to the server: the request's own origin is not the one.
        with page_client(app) as pages:
            response = pages.sign_in("alice")
            assert (response.status_code, _refusal(response.text)) == (403, "origin_refused")
            # The browser, at the public https address, holds the page's Secure cookie.
            page = pages.get("/ui/signin")
            pages.client.cookies.set("__Host-repolink_csrf", page.cookies["__Host-repolink_csrf"])
            response = pages.post(
                "/ui/signin",
                {"username": "alice", "password": "x" * 12, "csrf_token": csrf_token(page.text)},
                origin="https://repolink.example.com",
            )
            assert response.status_code == 401  # past the origin check, to the password


def test_sign_in_itself_needs_the_sign_in_pages_token(app: Repolink) -> None:
    with page_client(app) as pages:
        response = pages.post("/ui/signin", {"username": "alice", "password": "x" * 12})
        assert (response.status_code, _refusal(response.text)) == (403, "csrf_token_invalid")


def test_sign_out_is_a_checked_post(alice: PageClient) -> None:
    assert alice.get("/ui/signout").status_code == 404  # no GET: a link cannot sign anyone out
    assert alice.post("/ui/signout").status_code == 403
    assert alice.get("/ui/projects").status_code == 200  # still signed in


def test_a_script_may_send_the_token_as_a_header(alice: PageClient, app: Repolink) -> None:
    token = csrf_token(alice.get("/ui/projects/new").text)
    refused = alice.post("/ui/projects/new", {"name": "Scripted"}, headers={"X-CSRF-Token": "no"})
    assert (refused.status_code, _refusal(refused.text)) == (403, "csrf_token_invalid")
    response = alice.post("/ui/projects/new", {"name": "Scripted"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 303
    assert _projects(app) == ["scripted"]
