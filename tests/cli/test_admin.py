"""`repolink admin …` run as the real installed command in a subprocess."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from repolink.keys import PrivateKey, generate_key
from repolink.settings import Settings
from repolink.store import Store, migrate
from repolink.store.key_records import load_private_key, store_private_key, store_public_key
from repolink.store.models import KeyRecord
from repolink.vault import Vault, load_vault, token_version

REPOLINK = Path(sys.executable).with_name("repolink")
KEY_1 = base64.b64encode(bytes(range(32))).decode()
KEY_2 = base64.b64encode(bytes(range(50, 82))).decode()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="module")
def keys() -> list[PrivateKey]:
    return [generate_key("ed25519"), generate_key("ecdsa", bits=384)]


def repolink(
    tmp_path: Path, *args: str, secret_key: str | None = None, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env["HOME"] = str(tmp_path / "home")
    env["REPOLINK_DATA_DIR"] = str(tmp_path / "data")
    if secret_key is not None:
        env["REPOLINK_SECRET_KEY"] = secret_key
    if database_url is not None:
        env["REPOLINK_DATABASE_URL"] = database_url
    return subprocess.run(
        [str(REPOLINK), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
def stored(data_dir: Path, keys: list[PrivateKey]) -> Iterator[list[str]]:
    """Two key pairs and one public key, stored under master key version 1 of the key file."""
    settings = Settings(data_dir=data_dir)
    vault = load_vault(settings)
    with Store.open(settings) as store, store.session() as session:
        ids = [store_private_key(session, vault, key, label="deploy").id for key in keys]
        store_public_key(session, keys[0].public_key, label="public only")
    yield ids


def records(settings: Settings) -> list[KeyRecord]:
    with Store.open(settings) as store, store.session() as session:
        return list(
            session.scalars(select(KeyRecord).where(KeyRecord.private_key_encrypted.is_not(None)))
        )


def test_rotate_secret_key_reencrypts_every_stored_key(
    tmp_path: Path, data_dir: Path, keys: list[PrivateKey], stored: list[str]
) -> None:
    result = repolink(tmp_path, "admin", "rotate-secret-key")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "master key version 2; re-encrypted 2 secrets\n"
    settings = Settings(data_dir=data_dir)
    for record in records(settings):
        assert record.vault_key_version == 2
        assert record.private_key_encrypted is not None
        assert token_version(record.private_key_encrypted) == 2
    vault = load_vault(settings)
    assert vault.versions == [1, 2]
    with Store.open(settings) as store, store.session() as session:
        assert [load_private_key(session, vault, i) for i in stored] == keys

    again = repolink(tmp_path, "admin", "rotate-secret-key")
    assert again.stdout == "master key version 3; re-encrypted 2 secrets\n"


def test_rotate_on_a_fresh_data_dir(tmp_path: Path, data_dir: Path) -> None:
    result = repolink(tmp_path, "admin", "rotate-secret-key")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "master key version 2; re-encrypted 0 secrets\n"
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600


def test_rotate_refuses_keys_from_the_environment(tmp_path: Path) -> None:
    result = repolink(tmp_path, "admin", "rotate-secret-key", secret_key=KEY_1)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: vault_key_from_environment: ")
    assert result.stderr.count("\n") == 1
    assert "repolink admin reencrypt" in result.stderr
    assert KEY_1 not in result.stderr


def test_reencrypt_after_adding_a_version_to_the_environment(
    tmp_path: Path, data_dir: Path, keys: list[PrivateKey]
) -> None:
    settings = Settings(data_dir=data_dir, secret_key=f"1:{KEY_1}")
    with Store.open(settings) as store, store.session() as session:
        record_id = store_private_key(session, load_vault(settings), keys[0], label="deploy").id
    result = repolink(tmp_path, "admin", "reencrypt", secret_key=f"1:{KEY_1},2:{KEY_2}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "master key version 2; re-encrypted 1 secrets\n"
    only_new = Vault({2: base64.b64decode(KEY_2)})
    with Store.open(settings) as store, store.session() as session:
        assert load_private_key(session, only_new, record_id) == keys[0]
    assert not (data_dir / "secret.key").exists()


def test_migrate_prints_the_revision(tmp_path: Path, data_dir: Path) -> None:
    result = repolink(tmp_path, "admin", "migrate")
    assert result.returncode == 0, result.stderr
    head = migrate.head_revision()
    assert result.stdout == f"database sqlite:///{data_dir / 'repolink.db'} at revision {head}\n"
    assert (data_dir / "repolink.db").is_file()


def test_migrate_applies_every_migration_to_an_empty_postgresql_database(
    tmp_path: Path, postgres_empty_url: str
) -> None:
    result = repolink(tmp_path, "admin", "migrate", database_url=postgres_empty_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"database {postgres_empty_url} at revision {migrate.head_revision()}\n"
    engine = create_engine(postgres_empty_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_key_file_with_loose_permissions_is_one_clear_line(
    tmp_path: Path, data_dir: Path, stored: list[str]
) -> None:
    (data_dir / "secret.key").chmod(0o644)
    result = repolink(tmp_path, "admin", "rotate-secret-key")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: vault_key_file_permissions: master key file {data_dir / 'secret.key'} is "
        f"accessible by group or others (mode 644) — chmod 600 {data_dir / 'secret.key'}\n"
    )


def test_unusable_database_is_one_clear_line(tmp_path: Path, data_dir: Path) -> None:
    (data_dir / "repolink.db").mkdir(parents=True)
    result = repolink(tmp_path, "admin", "migrate")
    assert result.returncode == 1
    assert result.stderr.startswith("error: store_open_failed: ")
    assert "Traceback" not in result.stderr
