"""Password hashing with argon2id (argon2-cffi), and the rules a password must meet.

The hash string carries its own parameters, so a hash made with older (weaker) parameters
still verifies and is reported as needing a rehash, which the caller stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repolink.errors import ValidationError

if TYPE_CHECKING:
    # argon2 is imported where a password is hashed: listing users or tokens needs none of it.
    from argon2 import PasswordHasher

MIN_PASSWORD_LENGTH = 8
# argon2 takes any length, but hashing megabytes per login attempt is a denial of service.
MAX_PASSWORD_LENGTH = 1024


def password_hasher() -> PasswordHasher:
    """argon2id with the library's current recommended parameters (RFC 9106, low memory)."""
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_password(password: str) -> str:
    """``password`` when it may be set, else ``password_invalid`` (never quoting it)."""
    if len(password) < MIN_PASSWORD_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            "password_invalid",
            f"a password is {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters "
            f"(got {len(password)})",
            "choose a longer password, such as a passphrase of several words",
        )
    if "\x00" in password:
        raise ValidationError(
            "password_invalid",
            "a password cannot contain a NUL character",
            "choose a password of printable characters",
        )
    return password


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    return (hasher or password_hasher()).hash(check_password(password))


def verify_password(
    stored_hash: str | None, password: str, hasher: PasswordHasher | None = None
) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``stored_hash``, and the new hash to store when it
    matched but was made with other parameters (else ``None``)."""
    if stored_hash is None or not password or len(password) > MAX_PASSWORD_LENGTH:
        return False, None
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = hasher or password_hasher()
    try:
        hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if hasher.check_needs_rehash(stored_hash):
        return True, hasher.hash(password)
    return True, None
