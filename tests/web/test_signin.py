"""Signing in and out through the pages (in process): the session's lifecycle as a browser
lives it — cookie, redirects, one answer for every failed sign-in, the rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from repolink.accounts.sessions import ACCOUNT_FAILURE_LIMIT, SOURCE_FAILURE_LIMIT
from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN
from repolink.settings import Settings
from repolink.store import Store
from support.accountskit import FAST_HASHER, PASSWORD, ManualClock, make_account
from support.servekit import drain_output, serving_service
from support.webkit import PageClient, csrf_token, page_client, signed_in_pages


@pytest.fixture
def pages(app: Repolink) -> Iterator[PageClient]:
    make_account(app, "alice")
    with page_client(app) as client:
        yield client


def test_a_page_sends_a_stranger_to_sign_in_and_back(pages: PageClient) -> None:
    response = pages.get("/ui/projects/new")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/signin?next=%2Fui%2Fprojects%2Fnew"
    signin = pages.get(response.headers["location"])
    assert 'name="next" value="/ui/projects/new"' in signin.text
    response = pages.post(
        "/ui/signin",
        {"username": "alice", "password": PASSWORD, "next": "/ui/projects/new"},
        token_from=response.headers["location"],
    )
    assert (response.status_code, response.headers["location"]) == (303, "/ui/projects/new")
    page = pages.get("/ui/projects/new")
    assert page.status_code == 200
    assert "alice" in page.text


def test_the_session_cookie_is_httponly_lax_and_holds_no_user_data(pages: PageClient) -> None:
    response = pages.sign_in("alice")
    cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith("repolink_session=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "path=/" in cookie.lower()
    assert "secure" not in attributes  # plain HTTP here: see the https case
    assert "domain" not in attributes
    assert "alice" not in cookie


def test_behind_https_the_cookie_is_secure_with_the_host_prefix(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", public_url="https://repolink.example.com/")
    with (
        Store.open(settings) as store,
        Repolink(settings, store=store, password_hasher=FAST_HASHER) as app,
    ):
        make_account(app, "alice")
        with page_client(app, origin="https://repolink.example.com") as pages:
            response = pages.sign_in("alice")
            assert response.status_code == 303
            # The browser sends it back, over https, and is signed in.
            assert pages.get("/ui/projects").status_code == 200
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("__Host-repolink_session="))
    assert "secure" in session.lower()
    assert "httponly" in session.lower()
    assert "domain" not in session.lower()


def test_every_failed_sign_in_gets_one_answer(pages: PageClient) -> None:
    pages.app.users.create(LOCAL_ADMIN, "tokens-only")
    answers = set()
    for username, password in (
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("tokens-only", PASSWORD),
    ):
        response = pages.post(
            "/ui/signin", {"username": username, "password": password}, token_from="/ui/signin"
        )
        assert response.status_code == 401
        assert "repolink_session" not in response.headers.get("set-cookie", "")
        message = response.text.split('class="error-message">', 1)[1].split("</p>", 1)[0]
        answers.add(message)
    assert answers == {
        '<span class="error-code">signin_failed</span> the username or the password is wrong'
    }


def test_sign_out_ends_the_session_on_the_server(pages: PageClient) -> None:
    pages.sign_in("alice")
    secret = pages.client.cookies["repolink_session"]
    response = pages.post("/ui/signout", token_from="/ui/projects")
    assert (response.status_code, response.headers["location"]) == (303, "/ui/signin")
    assert pages.app.sessions.resolve(secret) is None
    # The old cookie, sent again, opens nothing.
    pages.client.cookies.set("repolink_session", secret)
    assert pages.get("/ui/projects").status_code == 303


def test_signing_in_again_makes_a_new_session_and_ends_the_old(pages: PageClient) -> None:
    pages.sign_in("alice")
    first = pages.client.cookies["repolink_session"]
    pages.post(
        "/ui/signin",
        {"username": "alice", "password": PASSWORD},
        token_from="/ui/account",
    )
    second = pages.client.cookies["repolink_session"]
    assert first != second
    assert pages.app.sessions.resolve(first) is None
    assert pages.app.sessions.resolve(second) is not None


def test_an_idle_session_ends_after_twelve_hours(pages: PageClient, clock: ManualClock) -> None:
    pages.sign_in("alice")
    clock.now += timedelta(hours=11)
    assert pages.get("/ui/projects").status_code == 200  # seen: the idle time starts again
    clock.now += timedelta(hours=11)
    assert pages.get("/ui/projects").status_code == 200
    clock.now += timedelta(hours=12)
    response = pages.get("/ui/projects")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/signin")


def test_a_session_ends_after_fourteen_days_however_busy(
    pages: PageClient, clock: ManualClock
) -> None:
    pages.sign_in("alice")
    for _ in range(13 * 2):
        clock.now += timedelta(hours=12) - timedelta(minutes=1)
        assert pages.get("/ui/projects").status_code == 200
    clock.now += timedelta(days=1)
    assert pages.get("/ui/projects").status_code == 303


def test_a_password_change_ends_every_other_session(app: Repolink) -> None:
    make_account(app, "alice")
    with signed_in_pages(app, "alice") as laptop, signed_in_pages(app, "alice") as phone:
        response = laptop.post(
            "/ui/account/password",
            {
                "current": PASSWORD,
                "new": "a new long passphrase",
                "confirm": "a new long passphrase",
            },
            token_from="/ui/account",
        )
        assert (response.status_code, response.headers["location"]) == (303, "/ui/account")
        assert laptop.get("/ui/account").status_code == 200  # a new session, here
        assert phone.get("/ui/account").status_code == 303  # the other one ended
        assert app.users.check_password("alice", "a new long passphrase") is not None


def test_a_wrong_current_password_is_shown_beside_its_field(pages: PageClient) -> None:
    pages.sign_in("alice")
    response = pages.post(
        "/ui/account/password",
        {
            "current": "not it at all",
            "new": "a new long passphrase",
            "confirm": "a new long passphrase",
        },
        token_from="/ui/account",
    )
    assert response.status_code == 401
    assert 'id="current-error"' in response.text
    assert "password_wrong" in response.text
    assert pages.get("/ui/account").status_code == 200  # still signed in


def test_sign_out_everywhere_ends_every_session(app: Repolink) -> None:
    make_account(app, "alice")
    with signed_in_pages(app, "alice") as laptop, signed_in_pages(app, "alice") as phone:
        # The link asks on a page of its own; its button signs out everywhere.
        question = "/ui/account/signout-everywhere"
        assert f'href="{question}"' in laptop.get("/ui/account").text
        asked = laptop.get(question)
        assert asked.status_code == 200 and "Sign out on every device?" in asked.text
        assert phone.get("/ui/account").status_code == 200  # asking ended nothing
        response = laptop.post(question, token_from=question)
        assert response.status_code == 303
        assert laptop.get("/ui/account").status_code == 303
        assert phone.get("/ui/account").status_code == 303


def test_deleting_the_user_ends_their_sessions(pages: PageClient) -> None:
    pages.sign_in("alice")
    pages.app.users.delete(LOCAL_ADMIN, "alice")
    assert pages.get("/ui/projects").status_code == 303


def test_sign_in_is_throttled_per_account(pages: PageClient) -> None:
    for _ in range(10):
        response = pages.post(
            "/ui/signin", {"username": "alice", "password": "wrong guess"}, token_from="/ui/signin"
        )
        assert response.status_code == 401
    # Now even the right password is refused unchecked, with the wait named.
    response = pages.sign_in("alice")
    assert response.status_code == 429
    assert "signin_throttled" in response.text
    assert "wait 15 minutes" in response.text


def test_the_next_address_never_leaves_this_server(pages: PageClient) -> None:
    for target in ("https://evil.example/", "//evil.example/ui/", "/ui/..\\evil", "/api/v1"):
        pages.client.cookies.clear()  # signed out, as a new visitor
        response = pages.post(
            "/ui/signin",
            {"username": "alice", "password": PASSWORD, "next": target},
            token_from="/ui/signin",
        )
        assert response.headers["location"] == "/ui/projects", target


def failed_sign_ins(pages: PageClient, count: int, forwarded_for: str, *, first: int = 0) -> None:
    """``count`` failed sign-ins of unknown users (``guessN`` from N = ``first``: none of them
    is held back by its account's count), each saying it came from ``forwarded_for``."""
    token = csrf_token(pages.get("/ui/signin").text)
    for attempt in range(first, first + count):
        response = pages.post(
            "/ui/signin",
            {"username": f"guess{attempt}", "password": "guess-guess", "csrf_token": token},
            headers={"X-Forwarded-For": forwarded_for},
        )
        assert response.status_code == 401, response.text


def sign_in_from(pages: PageClient, forwarded_for: str) -> int:
    pages.client.cookies.clear()
    token = csrf_token(pages.get("/ui/signin").text)
    form = {"username": "alice", "password": PASSWORD, "csrf_token": token}
    return pages.post("/ui/signin", form, headers={"X-Forwarded-For": forwarded_for}).status_code


def test_a_forged_forwarded_for_is_ignored_and_a_trusted_proxys_is_read(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", trusted_proxies="10.0.0.5")
    with (
        Store.open(settings) as store,
        Repolink(settings, store=store, password_hasher=FAST_HASHER) as app,
    ):
        make_account(app, "alice")
        # Not a trusted proxy: every failure is the peer's, whichever address it claims.
        with page_client(app, peer=("192.0.2.10", 40000)) as direct:
            for n in range(SOURCE_FAILURE_LIMIT):
                failed_sign_ins(direct, 1, f"203.0.113.{n}", first=n)
            assert sign_in_from(direct, "203.0.113.200") == 429
        # Behind the trusted proxy: each client is counted by the address the proxy appended.
        with page_client(app, peer=("10.0.0.5", 40000)) as proxied:
            failed_sign_ins(proxied, SOURCE_FAILURE_LIMIT, "198.51.100.1, 203.0.113.7")
            assert sign_in_from(proxied, "203.0.113.7") == 429
            assert sign_in_from(proxied, "203.0.113.8") == 303
            # What the client wrote left of the proxy's entry is not who it is.
            assert sign_in_from(proxied, "203.0.113.8, 203.0.113.7") == 429


def test_failed_sign_ins_are_counted_across_serve_processes_by_the_peer(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    first_settings = {"REPOLINK_ADMIN_PASSWORD": PASSWORD}
    # The second process trusts loopback as its proxy; the first trusts no one.
    second_settings = {"REPOLINK_TRUSTED_PROXIES": "127.0.0.1"}
    no_workers = ["--workers", "0"]
    with serving_service(data_dir, first_settings, args=no_workers, ssh=False) as first:
        drain_output(first, tmp_path / "first.log")
        with serving_service(data_dir, second_settings, args=no_workers, ssh=False) as second:
            drain_output(second, tmp_path / "second.log")
            clients = [
                httpx.Client(base_url=service.url, trust_env=False, timeout=60)
                for service in (first, second)
            ]
            try:
                for attempt in range(ACCOUNT_FAILURE_LIMIT):
                    client = clients[attempt % 2]
                    token = csrf_token(client.get("/ui/signin").text)
                    response = client.post(
                        "/ui/signin",
                        data={"username": "admin", "password": "guess", "csrf_token": token},
                        headers={
                            "Origin": str(client.base_url).rstrip("/"),
                            "X-Forwarded-For": f"203.0.113.{attempt}",
                        },
                    )
                    assert response.status_code == 401, response.text
                # Half the limit in each process: the account is held back in both.
                for client in clients:
                    token = csrf_token(client.get("/ui/signin").text)
                    response = client.post(
                        "/ui/signin",
                        data={"username": "admin", "password": PASSWORD, "csrf_token": token},
                        headers={"Origin": str(client.base_url).rstrip("/")},
                    )
                    assert response.status_code == 429, response.text
            finally:
                for client in clients:
                    client.close()
    first_log = (tmp_path / "first.log").read_text()
    second_log = (tmp_path / "second.log").read_text()
    # The first process read no one's X-Forwarded-For (uvicorn's own reading is off too);
    # the second took the address its trusted proxy gave.
    assert "refused a sign-in from 127.0.0.1" in first_log
    assert "refused a sign-in from 203.0.113." not in first_log
    assert "refused a sign-in from 203.0.113.1" in second_log
