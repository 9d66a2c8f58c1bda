"""A key record's use, without the ORM: its private key decrypted, and its last use written as
one fixed SQL statement (:mod:`repolink.store.plain`) — the same text inside an ORM transaction
(:func:`repolink.store.key_records.mark_used`) and in a refresh that found nothing to fetch and
never imports the ORM (issue 10 §2)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from repolink.errors import NotFound, RepolinkError, ValidationError, VaultError
from repolink.store.plain import PlainReader
from repolink.vault import Vault

if TYPE_CHECKING:
    from repolink.keys import PrivateKey

# The latest use wins when uses are reported out of order.
_MARK_USED = (
    "UPDATE key_records SET last_used_at = :when"
    " WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :when)"
)


def mark_key_used(db: PlainReader, record_id: str, when: datetime) -> int:
    """Record a use of the key at ``when`` (timezone-aware); how many rows changed: 0 when a
    later use is recorded already or there is no such key."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValidationError(
            "timestamp_naive",
            "a key's last use must be a timezone-aware time",
            "pass datetime.now(UTC) or another aware datetime",
        )
    return db.execute(_MARK_USED, {"id": record_id, "when": when})


def check_decryptable(vault: Vault, record_id: str, token: bytes | None) -> None:
    """Raise what decrypting the key record's private key would for a key that is missing or
    that the vault cannot decrypt, without parsing it (microseconds, not the parse's
    milliseconds)."""
    decrypt_key_bytes(vault, record_id, token)


def decrypt_key_bytes(vault: Vault, record_id: str, token: bytes | None) -> bytes:
    """The decrypted ``private_key_encrypted`` column (``token``) of record ``record_id``."""
    if token is None:
        raise NotFound(
            "key_record_public_only",
            f"key record {record_id} holds a public key only",
            "use a record that was stored with its private half",
        )
    return vault.decrypt(token, record_id=record_id)


def decrypt_private_key(vault: Vault, record_id: str, token: bytes | None) -> PrivateKey:
    """The private key of record ``record_id``, from its ``private_key_encrypted`` column
    (``token``) as read earlier: for a caller that parses the key only once it needs it."""
    from repolink.keys import parse_private_key  # the cryptography: only when a key is used

    plaintext = decrypt_key_bytes(vault, record_id, token)
    try:
        return parse_private_key(plaintext).key
    except RepolinkError:
        # Decrypted fine yet unparseable: written by a bug, not by a person. Say nothing of it.
        raise VaultError(
            "key_record_corrupt",
            f"the private key of key record {record_id} cannot be read back",
            "store the key again; report this as a bug in repolink",
        ) from None
