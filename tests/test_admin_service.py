"""repolink.admin: a master-key rotation reaches every kind of stored secret."""

from __future__ import annotations

from sqlalchemy import select

from repolink.admin import MasterKeyRotation, rotate_secret_key
from repolink.host.hooks import HookService, secret_record_id
from repolink.host.service import HostService
from repolink.keys import generate_key
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.key_records import load_private_key, store_private_key
from repolink.store.models.hooks import HostHook
from repolink.vault import load_vault, token_version


def test_rotation_reencrypts_private_keys_and_webhook_secrets(
    settings: Settings, store: Store
) -> None:
    key = generate_key()
    with store.session() as session:
        record_id = store_private_key(session, load_vault(settings), key, label="deploy").id
    host = HostService(settings, store)
    host.create_repository("acme", "widgets")
    hook = HookService(settings, store, host).add_hook(
        "acme", "widgets", "http://127.0.0.1:9/hook", secret="s3cret-value"
    )

    assert rotate_secret_key(store, settings) == MasterKeyRotation(version=2, reencrypted=2)

    vault = load_vault(settings)
    with store.session() as session:
        assert load_private_key(session, vault, record_id) == key
        row = session.scalars(select(HostHook).where(HostHook.uuid == hook.uuid)).one()
        assert row.secret_encrypted is not None
        assert token_version(row.secret_encrypted) == 2
        secret = vault.decrypt(row.secret_encrypted, record_id=secret_record_id(hook.uuid))
        assert secret == b"s3cret-value"
