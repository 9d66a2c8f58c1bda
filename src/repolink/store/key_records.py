"""Key records: how the platform stores deploy keys and reads them back for a fetch.

The private half is stored as OpenSSH bytes encrypted by the vault for the record's id, so a
database dump holds no key material and a ciphertext moved to another row does not decrypt.
Functions take the caller's session and never commit; the caller's transaction decides.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from repolink.errors import NotFound, ValidationError
from repolink.keys import PrivateKey, PublicKey
from repolink.store.key_use import decrypt_private_key, mark_key_used
from repolink.store.models.keys import KeyRecord, new_record_id
from repolink.store.plain import CoreReader
from repolink.store.types import utcnow
from repolink.vault import Vault

log = logging.getLogger(__name__)

MAX_LABEL_LENGTH = 200

_RECORD_ID = re.compile(r"[0-9a-f]{32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def store_private_key(session: Session, vault: Vault, key: PrivateKey, *, label: str) -> KeyRecord:
    """Store a key pair; the private half is encrypted for the new record's id."""
    record = _new_record(key.public_key, label=label)
    record.private_key_encrypted = vault.encrypt(key.to_openssh(), record_id=record.id)
    record.vault_key_version = vault.current_version
    session.add(record)
    session.flush()
    log.info("stored key pair %s (%s)", record.id, record.fingerprint_sha256)
    return record


def store_public_key(session: Session, key: PublicKey, *, label: str) -> KeyRecord:
    """Store a public key alone (a key whose private half lives elsewhere)."""
    record = _new_record(key, label=label)
    session.add(record)
    session.flush()
    log.info("stored public key %s (%s)", record.id, record.fingerprint_sha256)
    return record


def get_key_record(session: Session, record_id: str) -> KeyRecord:
    """The record with this id, or ``key_record_not_found``."""
    well_formed = _RECORD_ID.fullmatch(record_id) is not None
    record = session.get(KeyRecord, record_id) if well_formed else None
    if record is None:
        # Only a well-formed id is echoed: whatever else was passed might be a pasted key.
        shown = f" {record_id}" if well_formed else ""
        raise NotFound(
            "key_record_not_found",
            f"there is no key record{shown}",
            "list the stored keys to find the right id",
        )
    return record


def load_private_key(session: Session, vault: Vault, record_id: str) -> PrivateKey:
    """The decrypted private key of a record."""
    record = get_key_record(session, record_id)
    return decrypt_private_key(vault, record.id, record.private_key_encrypted)


def mark_used(session: Session, record_id: str, when: datetime) -> None:
    """Record a use of the key; the latest use wins when uses are reported out of order."""
    session.flush()  # the statement below runs beside the ORM: nothing of it may be pending
    if not mark_key_used(CoreReader(session.connection()), record_id, when):
        get_key_record(session, record_id)  # a later use is recorded already, or no such key


def list_key_records(session: Session) -> list[KeyRecord]:
    """Every key record, oldest first."""
    return list(session.scalars(select(KeyRecord).order_by(KeyRecord.created_at, KeyRecord.id)))


def reencrypt_all(session: Session, vault: Vault) -> int:
    """Re-encrypt every private key not under the current master key; return how many.

    The token, not the ``vault_key_version`` column, is the truth, so every encrypted row is
    looked at. A token whose master key is not loaded fails the whole call (and so the
    caller's transaction) with ``vault_key_missing``.
    """
    current = vault.current_version
    rows = session.scalars(select(KeyRecord).where(KeyRecord.private_key_encrypted.is_not(None)))
    count = 0
    for record in rows:
        token = record.private_key_encrypted
        assert token is not None  # by the query
        if not vault.needs_reencrypt(token) and record.vault_key_version == current:
            continue
        plaintext = vault.decrypt(token, record_id=record.id)
        record.private_key_encrypted = vault.encrypt(plaintext, record_id=record.id)
        record.vault_key_version = current
        count += 1
    session.flush()
    log.info("re-encrypted %d private keys with master key version %d", count, current)
    return count


def _new_record(public: PublicKey, *, label: str) -> KeyRecord:
    return KeyRecord(
        id=new_record_id(),
        label=_checked_label(label),
        comment=public.comment,
        key_type=public.key_type,
        bits=public.bits,
        public_key=public.openssh_line(with_comment=False),
        fingerprint_sha256=public.sha256_fingerprint,
        fingerprint_md5=public.md5_fingerprint,
        created_at=utcnow(),
    )


def _checked_label(label: str) -> str:
    # The label is never echoed: people paste the strangest things into name fields.
    cleaned = label.strip()
    if not cleaned or len(cleaned) > MAX_LABEL_LENGTH or _CONTROL.search(cleaned):
        raise ValidationError(
            "key_label_invalid",
            f"a key label must be 1 to {MAX_LABEL_LENGTH} printable characters "
            f"(got {len(cleaned)} characters)",
            "give the key a short name, such as 'deploy key for api-server'",
        )
    return cleaned
