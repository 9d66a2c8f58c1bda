"""repolink.store.key_records: deploy keys stored encrypted, read back, re-encrypted."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import select, text, update

from repolink.admin import MasterKeyRotation
from repolink.app import Repolink
from repolink.errors import NotFound, ValidationError, VaultError
from repolink.keys import PrivateKey, generate_key
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.key_records import (
    list_key_records,
    load_private_key,
    mark_used,
    reencrypt_all,
    store_private_key,
    store_public_key,
)
from repolink.store.models import KeyRecord
from repolink.vault import Vault, load_vault, rotate_master_key, token_version

pytestmark = pytest.mark.databases


@pytest.fixture(scope="module")
def keys() -> list[PrivateKey]:
    return [
        generate_key("ed25519", comment="ci@example"),
        generate_key("rsa", bits=2048, comment="rsa@example"),
        generate_key("ecdsa", bits=256),
    ]


def secret_fragments(key: PrivateKey) -> list[bytes]:
    """Every piece of a private key that must never be found in clear at rest.

    The lines of its OpenSSH and PKCS#8 encodings, except those that merely repeat the public
    key (both formats embed it, and the public half is stored in clear on purpose), and the
    raw private number, in binary and in base64.
    """
    crypto = key.crypto_key
    pkcs8 = crypto.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key.openssh_line(with_comment=False).encode()
    lines = [
        line
        for encoding in (key.to_openssh(), pkcs8)
        for line in encoding.splitlines()
        if line and not line.startswith(b"-----") and line not in public
    ]
    if isinstance(crypto, ed25519.Ed25519PrivateKey):
        secret = crypto.private_bytes_raw()
    elif isinstance(crypto, rsa.RSAPrivateKey):
        d = crypto.private_numbers().d
        secret = d.to_bytes((d.bit_length() + 7) // 8, "big")
    else:
        assert isinstance(crypto, ec.EllipticCurvePrivateKey)
        value = crypto.private_numbers().private_value
        secret = value.to_bytes((value.bit_length() + 7) // 8, "big")
    assert len(lines) >= 2
    return [*lines, secret, base64.b64encode(secret)]


def test_store_and_load_every_key_type(store: Store, vault: Vault, keys: list[PrivateKey]) -> None:
    with store.session() as session:
        ids = [
            store_private_key(session, vault, key, label=f"key {i}").id
            for i, key in enumerate(keys)
        ]
    with store.session() as session:
        for record_id, key in zip(ids, keys, strict=True):
            assert load_private_key(session, vault, record_id) == key
            record = session.get(KeyRecord, record_id)
            assert record is not None
            public = key.public_key
            assert record.key_type == public.key_type
            assert record.bits == public.bits
            assert record.comment == public.comment
            assert record.public_key == public.openssh_line(with_comment=False)
            assert record.fingerprint_sha256 == public.sha256_fingerprint
            assert record.fingerprint_md5 == public.md5_fingerprint
            assert record.vault_key_version == 1
            assert record.created_at.tzinfo == UTC
            assert record.last_used_at is None and record.retired_at is None


def test_public_key_column_has_no_comment(
    store: Store, vault: Vault, keys: list[PrivateKey]
) -> None:
    with store.session() as session:
        record = store_private_key(session, vault, keys[0], label="deploy")
    assert "ci@example" not in record.public_key
    assert len(record.public_key.split()) == 2
    assert record.comment == "ci@example"


def test_public_only_record(store: Store, vault: Vault, keys: list[PrivateKey]) -> None:
    with store.session() as session:
        record = store_public_key(session, keys[1].public_key, label="their key")
        assert record.private_key_encrypted is None
        assert record.vault_key_version is None
        assert record.fingerprint_sha256 == keys[1].public_key.sha256_fingerprint
        with pytest.raises(NotFound) as err:
            load_private_key(session, vault, record.id)
    assert err.value.code == "key_record_public_only"


def test_unknown_record(store: Store, vault: Vault) -> None:
    with store.session() as session:
        with pytest.raises(NotFound) as err:
            load_private_key(session, vault, "0" * 32)
        assert err.value.code == "key_record_not_found"
        assert "0" * 32 in err.value.message
        with pytest.raises(NotFound) as err:
            load_private_key(session, vault, "-----BEGIN OPENSSH PRIVATE KEY-----")
        assert err.value.code == "key_record_not_found"
        assert "BEGIN" not in err.value.one_line()


@pytest.mark.parametrize("label", ["", "   ", "x" * 201, "two\nlines", "tab\there"])
def test_bad_labels_are_refused_without_echo(
    store: Store, vault: Vault, keys: list[PrivateKey], label: str
) -> None:
    with store.session() as session, pytest.raises(ValidationError) as err:
        store_private_key(session, vault, keys[0], label=label)
    assert err.value.code == "key_label_invalid"
    if label.strip():
        assert label.strip() not in err.value.one_line()


def test_ciphertext_copied_to_another_row_does_not_decrypt(
    store: Store, vault: Vault, keys: list[PrivateKey]
) -> None:
    with store.session() as session:
        first = store_private_key(session, vault, keys[0], label="first").id
        second = store_private_key(session, vault, keys[1], label="second").id
    with store.engine.begin() as connection:
        stolen = connection.execute(
            text("SELECT private_key_encrypted FROM key_records WHERE id = :id"), {"id": first}
        ).scalar_one()
        connection.execute(
            text("UPDATE key_records SET private_key_encrypted = :c WHERE id = :id"),
            {"c": stolen, "id": second},
        )
    with store.session() as session:
        with pytest.raises(VaultError) as err:
            load_private_key(session, vault, second)
        assert err.value.code == "vault_decrypt_failed"
        assert load_private_key(session, vault, first) == keys[0]


@pytest.mark.sqlite_only("reads the SQLite file's bytes")
def test_database_files_hold_no_key_material_in_clear(
    store: Store, vault: Vault, keys: list[PrivateKey], settings: Settings
) -> None:
    with store.session() as session:
        for key in keys:
            store_private_key(session, vault, key, label="deploy")
    database = settings.resolved_data_dir / "repolink.db"
    wal = database.with_name("repolink.db-wal")

    def assert_clean() -> None:
        raw = database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert b"ssh-ed25519" in raw  # the public half is there, so the search reads real data
        for key in keys:
            for fragment in secret_fragments(key):
                assert fragment not in raw

    assert_clean()  # fresh rows still in the WAL file
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert_clean()  # and after they moved into the main file


def test_rotation_old_tokens_decrypt_then_everything_moves_to_the_new_version(
    store: Store, vault: Vault, keys: list[PrivateKey], settings: Settings
) -> None:
    with store.session() as session:
        ids = [store_private_key(session, vault, key, label="deploy").id for key in keys]
        store_public_key(session, keys[0].public_key, label="public only")
    assert rotate_master_key(settings) == 2
    rotated = load_vault(settings)
    with store.session() as session:
        # Before re-encryption: the old version still decrypts, new keys use version 2.
        assert [load_private_key(session, rotated, i) for i in ids] == keys
        newest = store_private_key(session, rotated, keys[0], label="after rotation")
        assert newest.vault_key_version == 2
        assert reencrypt_all(session, rotated) == len(keys)
    with store.session() as session:
        records = session.scalars(
            select(KeyRecord).where(KeyRecord.private_key_encrypted.is_not(None))
        ).all()
        assert {r.vault_key_version for r in records} == {2}
        for record in records:
            assert record.private_key_encrypted is not None
            assert token_version(record.private_key_encrypted) == 2
        only_new = Vault({2: _key_bytes(settings, 2)})
        assert [load_private_key(session, only_new, i) for i in ids] == keys
        assert reencrypt_all(session, rotated) == 0


def test_reencrypt_with_a_missing_master_key_changes_nothing(
    store: Store, vault: Vault, keys: list[PrivateKey]
) -> None:
    with store.session() as session:
        record_id = store_private_key(session, vault, keys[0], label="deploy").id
    unrelated = Vault({2: bytes(32)})
    with pytest.raises(VaultError) as err, store.session() as session:
        reencrypt_all(session, unrelated)
    assert err.value.code == "vault_key_missing"
    with store.session() as session:
        assert load_private_key(session, vault, record_id) == keys[0]


def test_rotate_secret_key_service(
    store: Store, vault: Vault, keys: list[PrivateKey], settings: Settings
) -> None:
    with store.session() as session:
        for key in keys:
            store_private_key(session, vault, key, label="deploy")
    admin = Repolink(settings, store=store).admin
    assert admin.rotate_secret_key() == MasterKeyRotation(version=2, reencrypted=3)
    assert admin.rotate_secret_key() == MasterKeyRotation(version=3, reencrypted=3)


def test_stale_version_column_is_repaired(
    store: Store, vault: Vault, keys: list[PrivateKey]
) -> None:
    with store.session() as session:
        record_id = store_private_key(session, vault, keys[0], label="deploy").id
    with store.session() as session:
        session.execute(update(KeyRecord).values(vault_key_version=None))
    with store.session() as session:
        assert reencrypt_all(session, vault) == 1
        record = session.get(KeyRecord, record_id)
        assert record is not None and record.vault_key_version == 1


def test_mark_used_keeps_the_latest_use(store: Store, vault: Vault, keys: list[PrivateKey]) -> None:
    later = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    with store.session() as session:
        record_id = store_private_key(session, vault, keys[0], label="deploy").id
        mark_used(session, record_id, later)
        mark_used(session, record_id, later - timedelta(days=1))
    with store.session() as session:
        record = session.get(KeyRecord, record_id)
        assert record is not None and record.last_used_at == later
        with pytest.raises(ValidationError) as err:
            mark_used(session, record_id, datetime(2024, 6, 2))
        assert err.value.code == "timestamp_naive"
        with pytest.raises(NotFound):
            mark_used(session, "f" * 32, later)


def test_list_key_records_oldest_first(store: Store, vault: Vault, keys: list[PrivateKey]) -> None:
    with store.session() as session:
        ids = [
            store_private_key(session, vault, key, label=f"k{i}").id for i, key in enumerate(keys)
        ]
        session.execute(
            update(KeyRecord)
            .where(KeyRecord.id == ids[0])
            .values(created_at=datetime(2030, 1, 1, tzinfo=UTC))
        )
    with store.session() as session:
        assert [r.id for r in list_key_records(session)] == [*ids[1:], ids[0]]


def test_nothing_secret_is_logged(
    store: Store,
    vault: Vault,
    keys: list[PrivateKey],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and parameters
    with store.session() as session:
        record_id = store_private_key(session, vault, keys[0], label="deploy").id
        load_private_key(session, vault, record_id)
    Repolink(settings, store=store).admin.rotate_secret_key()
    logged = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert b"re-encrypted 1 private keys" in logged
    for fragment in secret_fragments(keys[0]):
        assert fragment not in logged
    for line in settings.resolved_secret_key_file.read_bytes().splitlines():
        assert line.split(b":", 1)[1] not in logged


def _key_bytes(settings: Settings, version: int) -> bytes:
    for line in settings.resolved_secret_key_file.read_text().splitlines():
        number, _, encoded = line.partition(":")
        if number == str(version):
            return base64.b64decode(encoded)
    raise AssertionError(f"no version {version}")
