"""SessionService on a real store: a session resolves to the principal a token of the same user
does; only the secret's hash is stored; ended sessions are purged; failed sign-ins are
throttled per account and per source address, a success clearing only the account's count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from repolink.accounts.sessions import IDLE_TIMEOUT, SessionService
from repolink.app import Repolink
from repolink.errors import RateLimited, Unauthorized
from repolink.store.models.accounts import WebSession
from support.accountskit import PASSWORD, ManualClock, make_account

pytestmark = pytest.mark.databases


def test_a_session_is_the_principal_a_token_is(app: Repolink) -> None:
    account = make_account(app, "alice", site_admin=True)
    opened = app.sessions.sign_in("alice", PASSWORD, source="192.0.2.1")
    signed_in = app.sessions.resolve(opened.secret)
    assert signed_in is not None
    assert signed_in.principal == app.api_tokens.authenticate(account.token) == account.principal
    assert "secret" not in repr(opened) and opened.secret not in repr(opened)


def test_only_the_hash_of_the_secret_is_stored(app: Repolink) -> None:
    make_account(app, "alice")
    opened = app.sessions.sign_in("alice", PASSWORD, source="192.0.2.1")
    with app.store.session() as session:
        row = session.scalars(select(WebSession)).one()
        assert opened.secret not in (row.secret_hash, row.csrf_secret)
        assert len(row.secret_hash) == 64


@pytest.mark.parametrize("presented", [None, "", "x" * 500, "ünïcode", "not-a-session"])
def test_anything_else_resolves_to_no_one(app: Repolink, presented: str | None) -> None:
    make_account(app, "alice")
    app.sessions.sign_in("alice", PASSWORD, source="192.0.2.1")
    assert app.sessions.resolve(presented) is None


def test_ended_sessions_are_purged(app: Repolink, clock: ManualClock) -> None:
    make_account(app, "alice")
    app.sessions.sign_in("alice", PASSWORD, source="192.0.2.1")
    clock.now += IDLE_TIMEOUT
    live = app.sessions.sign_in("alice", PASSWORD, source="192.0.2.1")  # purges the first
    with app.store.session() as session:
        assert [row.id for row in session.scalars(select(WebSession))] == [
            live.signed_in.session_id
        ]
    clock.now += timedelta(days=30)
    assert app.sessions.purge_expired() == 1


def test_a_source_address_is_throttled_across_accounts(app: Repolink, clock: ManualClock) -> None:
    make_account(app, "alice")
    sessions = SessionService(
        app.store, app.users, clock=clock, source_failure_limit=3, account_failure_limit=100
    )
    for name in ("a", "b", "c"):
        with pytest.raises(Unauthorized, match="username or the password"):
            sessions.sign_in(name, "guess-guess", source="198.51.100.7")
    with pytest.raises(RateLimited) as refused:
        sessions.sign_in("alice", PASSWORD, source="198.51.100.7")
    assert refused.value.code == "signin_throttled"
    # Another address is not held back, and the window passes.
    assert sessions.sign_in("alice", PASSWORD, source="198.51.100.8")
    clock.now += timedelta(minutes=15)
    assert sessions.sign_in("alice", PASSWORD, source="198.51.100.7")


def test_a_success_clears_the_accounts_count_not_the_sources(
    app: Repolink, clock: ManualClock
) -> None:
    make_account(app, "alice")
    sessions = SessionService(
        app.store, app.users, clock=clock, source_failure_limit=4, account_failure_limit=2
    )
    with pytest.raises(Unauthorized):
        sessions.sign_in("alice", "guess-guess", source="198.51.100.7")
    sessions.sign_in("alice", PASSWORD, source="198.51.100.7")
    with pytest.raises(Unauthorized):
        sessions.sign_in("alice", "guess-guess", source="198.51.100.7")
    sessions.sign_in("alice", PASSWORD, source="198.51.100.7")  # the account's count was 1
    for _ in range(2):
        with pytest.raises(Unauthorized):
            sessions.sign_in("bob", "guess-guess", source="198.51.100.7")
    with pytest.raises(RateLimited):  # the source's count went on: 4
        sessions.sign_in("alice", PASSWORD, source="198.51.100.7")


def test_a_password_set_by_an_admin_ends_the_users_sessions(app: Repolink) -> None:
    from repolink.auth.principal import LOCAL_ADMIN

    make_account(app, "alice")
    opened = app.sessions.sign_in("alice", PASSWORD, source="192.0.2.1")
    app.users.set_password(LOCAL_ADMIN, "alice", "another long one")
    assert app.sessions.resolve(opened.secret) is None
