"""TokenService: a user's tokens made (shown once), listed, revoked, authenticated; who may."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Principal
from repolink.auth.tokens import USER_TOKEN_PREFIX
from repolink.errors import NotFound, PermissionDenied, ValidationError
from repolink.settings import Settings
from repolink.store.types import utcnow
from support.accountskit import FAST_HASHER, make_account

pytestmark = pytest.mark.databases


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Iterator[Repolink]:
    with Repolink(settings, password_hasher=FAST_HASHER, clock=clock) as application:
        yield application


def test_a_token_is_shown_once_and_authenticates_its_user(app: Repolink) -> None:
    user = app.users.create(LOCAL_ADMIN, "jane")
    info, token = app.api_tokens.create(LOCAL_ADMIN, "jane", "laptop")
    assert token.startswith(USER_TOKEN_PREFIX)
    assert (info.name, info.user_id, info.expires_at) == ("laptop", user.id, None)
    assert token not in repr(info)
    assert app.api_tokens.authenticate(token) == Principal(user.id, "jane", False)
    assert app.api_tokens.authenticate(token[:-1]) is None
    assert app.api_tokens.authenticate(None) is None


def test_an_expiring_token_stops_working_then(app: Repolink, clock: Clock) -> None:
    app.users.create(LOCAL_ADMIN, "jane")
    info, token = app.api_tokens.create(LOCAL_ADMIN, "jane", "ci", expires_in=timedelta(days=30))
    assert info.expires_at == clock.now + timedelta(days=30)
    clock.now += timedelta(days=29)
    assert app.api_tokens.authenticate(token) is not None
    clock.now += timedelta(days=1)
    assert app.api_tokens.authenticate(token) is None


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(seconds=-1), timedelta(days=4000)])
def test_a_lifetime_out_of_range_is_refused(app: Repolink, lifetime: timedelta) -> None:
    app.users.create(LOCAL_ADMIN, "jane")
    with pytest.raises(ValidationError) as caught:
        app.api_tokens.create(LOCAL_ADMIN, "jane", "ci", expires_in=lifetime)
    assert caught.value.code == "token_expiry_invalid"


def test_a_token_is_known_without_the_database_once_authenticated(app: Repolink) -> None:
    jane = make_account(app, "jane")
    assert app.api_tokens.known(jane.token) is None
    principal = app.api_tokens.authenticate(jane.token)
    assert principal is not None and app.api_tokens.known(jane.token) == principal
    assert app.api_tokens.known(jane.token[:-1]) is None
    assert app.api_tokens.known("x" * 600) is None


def test_a_known_token_is_forgotten_when_revoked(app: Repolink) -> None:
    jane = make_account(app, "jane")
    other = make_account(app, "joe")
    for account in (jane, other):
        assert app.api_tokens.authenticate(account.token) is not None
    (info,) = app.api_tokens.list(jane.principal, username="jane")
    app.api_tokens.revoke(jane.principal, info.id)
    assert app.api_tokens.known(jane.token) is None
    assert app.api_tokens.authenticate(jane.token) is None
    # Everything is forgotten, and looked up again: joe's token still works.
    assert app.api_tokens.known(other.token) is None
    assert app.api_tokens.authenticate(other.token) is not None


def test_a_known_token_is_forgotten_when_its_user_is_deleted(app: Repolink) -> None:
    jane = make_account(app, "jane")
    assert app.api_tokens.authenticate(jane.token) is not None
    app.users.delete(LOCAL_ADMIN, "jane")
    assert app.api_tokens.known(jane.token) is None
    assert app.api_tokens.authenticate(jane.token) is None


def test_a_known_token_stops_at_its_expiry(app: Repolink, clock: Clock) -> None:
    app.users.create(LOCAL_ADMIN, "jane")
    _info, token = app.api_tokens.create(LOCAL_ADMIN, "jane", "ci", expires_in=timedelta(hours=1))
    assert app.api_tokens.authenticate(token) is not None
    clock.now += timedelta(hours=1)
    assert app.api_tokens.known(token) is None


def test_the_last_use_is_still_written_once_a_minute(app: Repolink, clock: Clock) -> None:
    jane = make_account(app, "jane")
    app.api_tokens.authenticate(jane.token)
    (first,) = app.api_tokens.list(jane.principal, username="jane")
    assert first.last_used_at == clock.now
    used = clock.now
    clock.now += timedelta(seconds=30)
    app.api_tokens.authenticate(jane.token)
    (same,) = app.api_tokens.list(jane.principal, username="jane")
    assert same.last_used_at == used
    clock.now += timedelta(seconds=30)
    app.api_tokens.authenticate(jane.token)
    (later,) = app.api_tokens.list(jane.principal, username="jane")
    assert later.last_used_at == clock.now


def test_a_revoked_token_stops_working_at_once(app: Repolink) -> None:
    jane = make_account(app, "jane")
    (info,) = app.api_tokens.list(jane.principal, username="jane")
    revoked = app.api_tokens.revoke(jane.principal, info.id)
    assert revoked.revoked_at is not None
    assert app.api_tokens.authenticate(jane.token) is None
    assert app.api_tokens.list(jane.principal, username="jane") == []


def test_a_user_manages_their_own_tokens_only(app: Repolink) -> None:
    jane = make_account(app, "jane")
    joe = make_account(app, "joe")
    (joes,) = app.api_tokens.list(LOCAL_ADMIN, username="joe")
    for attempt in (
        lambda: app.api_tokens.create(jane.principal, "joe", "sneaky"),
        lambda: app.api_tokens.create(jane.principal, None, "site admin token"),
        lambda: app.api_tokens.list(jane.principal, username="joe"),
        lambda: app.api_tokens.list(jane.principal),
    ):
        with pytest.raises(PermissionDenied) as denied:
            attempt()
        assert denied.value.code == "site_admin_required"
    # Somebody else's token is not found, as a token that does not exist.
    with pytest.raises(NotFound) as caught:
        app.api_tokens.revoke(jane.principal, joes.id)
    assert caught.value.code == "token_not_found"
    assert app.api_tokens.authenticate(joe.token) == joe.principal
    _, own = app.api_tokens.create(jane.principal, "jane", "second")
    assert app.api_tokens.authenticate(own) == jane.principal


def test_a_site_admin_makes_owner_less_tokens(app: Repolink) -> None:
    info, token = app.api_tokens.create(LOCAL_ADMIN, None, "host automation")
    assert info.user_id is None
    principal = app.api_tokens.authenticate(token)
    assert principal is not None and principal.site_admin


def test_tokens_for_a_missing_user_are_not_found(app: Repolink) -> None:
    with pytest.raises(NotFound) as caught:
        app.api_tokens.create(LOCAL_ADMIN, "nobody", "ci")
    assert caught.value.code == "user_not_found"


def test_no_token_reaches_a_log_line(app: Repolink, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app.users.create(LOCAL_ADMIN, "jane")
    info, token = app.api_tokens.create(LOCAL_ADMIN, "jane", "laptop")
    app.api_tokens.authenticate(token)
    app.api_tokens.authenticate(token + "x")
    app.api_tokens.revoke(LOCAL_ADMIN, info.id)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "laptop" in text
    assert token[len(USER_TOKEN_PREFIX) :][:16] not in text
    entries = app.audit.entries(LOCAL_ADMIN).items
    assert token[len(USER_TOKEN_PREFIX) :][:16] not in repr([e.as_dict() for e in entries])
