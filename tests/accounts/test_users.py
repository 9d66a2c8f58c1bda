"""Users: created with an argon2 password, listed, deleted (memberships and tokens with them),
their passwords set and checked; the first site admin made once."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Principal, Role
from repolink.errors import Conflict, NotFound, ValidationError
from repolink.settings import Settings
from repolink.store.models.accounts import User
from support.accountskit import FAST_HASHER, PASSWORD, make_account

pytestmark = pytest.mark.databases


@pytest.fixture
def app(settings: Settings) -> Iterator[Repolink]:
    with Repolink(settings, password_hasher=FAST_HASHER) as application:
        yield application


def test_create_list_and_get(app: Repolink) -> None:
    jane = app.users.create(LOCAL_ADMIN, "jane", password=PASSWORD)
    root = app.users.create(LOCAL_ADMIN, "root", password=PASSWORD, site_admin=True)
    bot = app.users.create(LOCAL_ADMIN, "ci-bot")
    assert (jane.site_admin, root.site_admin) == (False, True)
    assert (jane.has_password, bot.has_password) == (True, False)
    assert [user.username for user in app.users.list_users()] == ["ci-bot", "jane", "root"]
    assert app.users.get("jane") == jane


def test_the_password_is_stored_as_an_argon2_hash_only(app: Repolink) -> None:
    app.users.create(LOCAL_ADMIN, "jane", password=PASSWORD)
    with app.store.session() as session:
        (row,) = session.query(User).all()
        assert row.password_hash is not None
        assert row.password_hash.startswith("$argon2id$")
        assert PASSWORD not in row.password_hash
        assert PASSWORD not in repr(row)


def test_check_password(app: Repolink) -> None:
    jane = app.users.create(LOCAL_ADMIN, "jane", password=PASSWORD)
    assert app.users.check_password("jane", PASSWORD) == Principal(jane.id, "jane", False)
    assert app.users.check_password("jane", "wrong password") is None
    assert app.users.check_password("nobody", PASSWORD) is None
    assert app.users.check_password("Not A Name!", PASSWORD) is None
    app.users.create(LOCAL_ADMIN, "bot")
    assert app.users.check_password("bot", PASSWORD) is None


def test_a_login_with_older_parameters_stores_a_new_hash(settings: Settings) -> None:
    with Repolink(settings, password_hasher=FAST_HASHER) as old:
        old.users.create(LOCAL_ADMIN, "jane", password=PASSWORD)
        with old.store.session() as session:
            before = session.query(User.password_hash).scalar()
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    with Repolink(settings, password_hasher=stronger) as new:
        assert new.users.check_password("jane", PASSWORD) is not None
        with new.store.session() as session:
            after = session.query(User.password_hash).scalar()
    assert after != before
    assert after is not None and not stronger.check_needs_rehash(after)


def test_set_password(app: Repolink) -> None:
    app.users.create(LOCAL_ADMIN, "jane", password=PASSWORD)
    app.users.set_password(LOCAL_ADMIN, "jane", "a new long password")
    assert app.users.check_password("jane", PASSWORD) is None
    assert app.users.check_password("jane", "a new long password") is not None
    with pytest.raises(ValidationError) as caught:
        app.users.set_password(LOCAL_ADMIN, "jane", "")
    assert caught.value.code == "password_invalid"
    with pytest.raises(NotFound):
        app.users.set_password(LOCAL_ADMIN, "nobody", "a new long password")


@pytest.mark.parametrize("username", ["", "Jane", "-jane", "a b", "x" * 65, "jane\n"])
def test_bad_usernames_are_refused(app: Repolink, username: str) -> None:
    with pytest.raises(ValidationError) as caught:
        app.users.create(LOCAL_ADMIN, username)
    assert caught.value.code == "username_invalid"


@pytest.mark.parametrize("username", ["admin-token", "local-admin", "token-12"])
def test_the_names_of_callers_that_are_no_user_are_reserved(app: Repolink, username: str) -> None:
    with pytest.raises(ValidationError) as caught:
        app.users.create(LOCAL_ADMIN, username)
    assert caught.value.code == "username_reserved"


def test_a_short_password_is_refused_and_no_user_made(app: Repolink) -> None:
    with pytest.raises(ValidationError) as caught:
        app.users.create(LOCAL_ADMIN, "jane", password="short")
    assert caught.value.code == "password_invalid"
    assert app.users.list_users() == []


def test_a_username_is_unique(app: Repolink) -> None:
    app.users.create(LOCAL_ADMIN, "jane")
    with pytest.raises(Conflict) as caught:
        app.users.create(LOCAL_ADMIN, "jane")
    assert caught.value.code == "user_exists"


def test_deleting_a_user_removes_memberships_and_revokes_tokens(app: Repolink) -> None:
    owner = make_account(app, "owner")
    jane = make_account(app, "jane")
    project = app.access.create_project(owner.principal, "Widgets")
    app.access.set_member(owner.principal, project.slug, "jane", Role.MEMBER)
    assert app.api_tokens.authenticate(jane.token) == jane.principal

    app.users.delete(LOCAL_ADMIN, "jane")

    assert app.api_tokens.authenticate(jane.token) is None
    assert [m.username for m in app.access.members(owner.principal, project.slug)] == ["owner"]
    (token,) = app.api_tokens.list(LOCAL_ADMIN, include_revoked=True)[1:]
    assert token.revoked_at is not None
    assert [user.username for user in app.users.list_users()] == ["owner"]
    with pytest.raises(NotFound) as caught:
        app.users.delete(LOCAL_ADMIN, "jane")
    assert caught.value.code == "user_not_found"


def test_a_deleted_users_name_can_be_given_again(app: Repolink) -> None:
    old = make_account(app, "jane")
    app.users.delete(LOCAL_ADMIN, "jane")
    new = app.users.create(LOCAL_ADMIN, "jane")
    assert new.id != old.principal.user_id
    # The old token stays dead: it does not become the new user's.
    assert app.api_tokens.authenticate(old.token) is None


def test_the_first_start_makes_the_site_admin_with_a_generated_password(app: Repolink) -> None:
    password = app.users.ensure_site_admin(None)
    assert password is not None and len(password) >= 20
    (admin,) = app.users.list_users()
    assert (admin.username, admin.site_admin) == ("admin", True)
    assert app.users.check_password("admin", password) is not None
    assert app.users.ensure_site_admin(None) is None
    assert app.users.ensure_site_admin("another password") is None
    assert app.users.check_password("admin", password) is not None


def test_the_first_start_takes_the_given_password(app: Repolink) -> None:
    assert app.users.ensure_site_admin(PASSWORD) is None
    assert app.users.check_password("admin", PASSWORD) is not None


def test_no_site_admin_is_made_when_users_exist(app: Repolink) -> None:
    app.users.create(LOCAL_ADMIN, "jane")
    assert app.users.ensure_site_admin(None) is None
    assert [user.username for user in app.users.list_users()] == ["jane"]


def test_no_password_reaches_a_log_line(app: Repolink, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app.users.create(LOCAL_ADMIN, "jane", password=PASSWORD)
    app.users.set_password(LOCAL_ADMIN, "jane", "a second long password")
    app.users.check_password("jane", "a wrong long password")
    with pytest.raises(ValidationError):
        app.users.create(LOCAL_ADMIN, "joe", password="short!!")
    generated = app.users.ensure_site_admin(None)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "jane" in text  # the log is there, only the secrets are not
    for secret in (PASSWORD, "a second long password", "a wrong long password", "short!!"):
        assert secret not in text
    assert generated is None  # users exist: nothing made, nothing to leak
