"""argon2id passwords: verified, rehashed when the parameters change, bounded in length."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from repolink.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_password,
    hash_password,
    verify_password,
)
from repolink.errors import ValidationError
from support.accountskit import FAST_HASHER

PASSWORD = "correct horse battery staple"


def test_a_hash_is_argon2id_and_verifies_only_its_password() -> None:
    stored = hash_password(PASSWORD, FAST_HASHER)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert verify_password(stored, PASSWORD, FAST_HASHER) == (True, None)
    assert verify_password(stored, PASSWORD + "!", FAST_HASHER) == (False, None)
    assert verify_password(stored, "", FAST_HASHER) == (False, None)
    assert verify_password(None, PASSWORD, FAST_HASHER) == (False, None)
    assert verify_password("not a hash", PASSWORD, FAST_HASHER) == (False, None)


def test_the_same_password_hashes_differently_each_time() -> None:
    assert hash_password(PASSWORD, FAST_HASHER) != hash_password(PASSWORD, FAST_HASHER)


def test_a_hash_made_with_other_parameters_verifies_and_is_rehashed() -> None:
    older = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    newer = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    matched, rehashed = verify_password(older.hash(PASSWORD), PASSWORD, newer)
    assert matched
    assert rehashed is not None
    assert not newer.check_needs_rehash(rehashed)
    assert verify_password(rehashed, PASSWORD, newer) == (True, None)


@pytest.mark.parametrize(
    "password",
    ["", "short", "x" * (MIN_PASSWORD_LENGTH - 1), "x" * (MAX_PASSWORD_LENGTH + 1), "with\x00nul!"],
)
def test_empty_short_long_and_nul_passwords_are_refused_without_quoting(password: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_password(password)
    assert caught.value.code == "password_invalid"
    if password:
        assert password not in caught.value.message


def test_an_overlong_password_is_not_even_hashed_to_verify() -> None:
    stored = hash_password(PASSWORD, FAST_HASHER)
    assert verify_password(stored, "x" * (MAX_PASSWORD_LENGTH + 1), FAST_HASHER) == (False, None)
