"""API tokens: shown once, stored as a hash, revocable, expiring; who a token stands for."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from repolink.auth.principal import ADMIN_TOKEN_USERNAME, Principal
from repolink.auth.tokens import (
    LAST_USED_RESOLUTION,
    TOKEN_PREFIX,
    USER_TOKEN_PREFIX,
    authenticate,
    create_token,
    hash_token,
    list_tokens,
    revoke_token,
    verify_token,
)
from repolink.errors import NotFound, ValidationError
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.accounts import ApiToken, User
from repolink.store.types import utcnow


def make_settings(tmp_path: Path, admin_token: str | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
        admin_token=SecretStr(admin_token) if admin_token is not None else None,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as opened:
        yield opened


def test_token_is_long_random_and_recognisable(store: Store) -> None:
    with store.session() as session:
        _, first = create_token(session, "ci")
        _, second = create_token(session, "ci")
    assert first.startswith(TOKEN_PREFIX)
    assert len(first) - len(TOKEN_PREFIX) >= 43  # 32 random bytes, url-safe base64
    assert first != second


def test_created_token_verifies_and_others_do_not(store: Store, settings: Settings) -> None:
    with store.session() as session:
        info, token = create_token(session, "platform")
    assert info.label == "platform"
    assert info.active
    with store.session() as session:
        assert verify_token(session, settings, token)
        assert not verify_token(session, settings, token + "x")
        assert not verify_token(session, settings, token[:-1])
        assert not verify_token(session, settings, "")
        assert not verify_token(session, settings, None)
        assert not verify_token(session, settings, "ä" * 10)
        assert not verify_token(session, settings, "a" * 100_000)


def test_only_the_hash_is_stored(store: Store, settings: Settings) -> None:
    with store.session() as session:
        info, token = create_token(session, "ci")
    with store.session() as session:
        row = session.get(ApiToken, info.id)
        assert row is not None
        assert row.token_hash == hash_token(token)
    store.close()
    database = settings.resolved_data_dir / "repolink.db"
    stored = b"".join(
        path.read_bytes()
        for path in database.parent.iterdir()
        if path.name.startswith(database.name)
    )
    assert token.encode() not in stored
    assert token[len(TOKEN_PREFIX) :].encode() not in stored
    assert hash_token(token).encode() in stored


def test_revoked_token_is_refused_at_once(store: Store, settings: Settings) -> None:
    with store.session() as session:
        info, token = create_token(session, "old")
    with store.session() as session:
        revoked = revoke_token(session, info.id)
    assert not revoked.active
    with store.session() as session:
        assert not verify_token(session, settings, token)
        assert [item.id for item in list_tokens(session)] == []
        assert [item.id for item in list_tokens(session, include_revoked=True)] == [info.id]


def test_revoking_twice_or_an_unknown_id_is_not_found(store: Store) -> None:
    with store.session() as session:
        info, _ = create_token(session, "old")
        revoke_token(session, info.id)
    for token_id in (info.id, 999):
        with pytest.raises(NotFound) as caught, store.session() as session:
            revoke_token(session, token_id)
        assert caught.value.code == "token_not_found"


def test_settings_admin_token_is_accepted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, admin_token="configured-secret-token")
    with Store.open(settings) as store, store.session() as session:
        assert verify_token(session, settings, "configured-secret-token")
        assert not verify_token(session, settings, "configured-secret-toke")
        assert not verify_token(session, settings, "configured-secret-token ")


def test_empty_settings_admin_token_accepts_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, admin_token="")
    with Store.open(settings) as store, store.session() as session:
        assert not verify_token(session, settings, "")
        assert not verify_token(session, settings, "anything")


def test_last_used_is_recorded(store: Store, settings: Settings) -> None:
    with store.session() as session:
        info, token = create_token(session, "ci")
    assert info.last_used_at is None
    with store.session() as session:
        assert verify_token(session, settings, token)
    with store.session() as session:
        (listed,) = list_tokens(session)
    assert listed.last_used_at is not None


@pytest.mark.parametrize("label", ["", "   ", "x" * 201, "line\nbreak"])
def test_bad_labels_are_refused(store: Store, label: str) -> None:
    with pytest.raises(ValidationError) as caught, store.session() as session:
        create_token(session, label)
    assert caught.value.code == "token_label_invalid"


# -- tokens of users ------------------------------------------------------------------------


def add_user(store: Store, username: str, *, site_admin: bool = False) -> int:
    with store.session() as session:
        row = User(username=username, site_admin=site_admin)
        session.add(row)
        session.flush()
        return row.id


def test_a_users_token_has_its_prefix_and_stands_for_the_user(
    store: Store, settings: Settings
) -> None:
    user_id = add_user(store, "jane")
    with store.session() as session:
        info, token = create_token(session, "laptop", user_id=user_id)
    assert token.startswith(USER_TOKEN_PREFIX)
    assert info.prefix == token[: len(info.prefix)]
    assert info.prefix.startswith(USER_TOKEN_PREFIX) and len(info.prefix) == 8
    assert info.user_id == user_id
    with store.session() as session:
        assert authenticate(session, settings, token) == Principal(user_id, "jane", False)
        # Not a site admin: the host API's question answers no.
        assert not verify_token(session, settings, token)


def test_an_owner_less_token_is_a_site_admin(store: Store, settings: Settings) -> None:
    with store.session() as session:
        info, token = create_token(session, "host admin")
    assert token.startswith(TOKEN_PREFIX) and info.user_id is None
    with store.session() as session:
        principal = authenticate(session, settings, token)
    assert principal == Principal(None, f"token-{info.id}", True)


def test_the_settings_token_is_the_admin_token_principal(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, admin_token="configured-secret-token")
    with Store.open(settings) as store, store.session() as session:
        principal = authenticate(session, settings, "configured-secret-token")
    assert principal == Principal(None, ADMIN_TOKEN_USERNAME, True)


def test_an_expired_token_is_refused(store: Store, settings: Settings) -> None:
    user_id = add_user(store, "jane")
    now = utcnow()
    with store.session() as session:
        _, token = create_token(
            session, "short", user_id=user_id, expires_at=now + timedelta(hours=1), now=now
        )
    with store.session() as session:
        assert authenticate(session, settings, token, now=now + timedelta(minutes=59))
        assert authenticate(session, settings, token, now=now + timedelta(hours=1)) is None


def test_the_token_of_a_deleted_user_is_refused(store: Store, settings: Settings) -> None:
    user_id = add_user(store, "gone")
    with store.session() as session:
        _, token = create_token(session, "ci", user_id=user_id)
    with store.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.deleted_at = utcnow()
    with store.session() as session:
        assert authenticate(session, settings, token) is None


def test_last_used_is_written_at_most_once_a_minute(store: Store, settings: Settings) -> None:
    with store.session() as session:
        info, token = create_token(session, "ci")
    start = utcnow()
    with store.session() as session:
        authenticate(session, settings, token, now=start)
        authenticate(session, settings, token, now=start + LAST_USED_RESOLUTION / 2)
    with store.session() as session:
        assert session.get(ApiToken, info.id).last_used_at == start  # type: ignore[union-attr]
        authenticate(session, settings, token, now=start + LAST_USED_RESOLUTION)
    with store.session() as session:
        row = session.get(ApiToken, info.id)
        assert row is not None and row.last_used_at == start + LAST_USED_RESOLUTION


def test_lists_by_owner(store: Store) -> None:
    user_id = add_user(store, "jane")
    with store.session() as session:
        mine, _ = create_token(session, "mine", user_id=user_id)
        admin, _ = create_token(session, "admin")
        assert [t.id for t in list_tokens(session, user_id=user_id)] == [mine.id]
        assert [t.id for t in list_tokens(session, owner_less=True)] == [admin.id]
        assert [t.id for t in list_tokens(session)] == [mine.id, admin.id]
