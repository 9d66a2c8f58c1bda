"""repolink.admin: a master-key rotation reaches every kind of stored secret, and the whole
application sees the new master key."""

from __future__ import annotations

from sqlalchemy import select

from repolink.admin import MasterKeyRotation
from repolink.app import Repolink
from repolink.git.runner import HardenedRunner
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
    host = HostService(settings, store, runner=HardenedRunner())
    host.create_repository("acme", "widgets")
    hook = HookService(settings, store, host).add_hook(
        "acme", "widgets", "http://127.0.0.1:9/hook", secret="s3cret-value"
    )

    assert Repolink(settings, store=store).admin.rotate_secret_key() == MasterKeyRotation(
        version=2, reencrypted=2
    )

    vault = load_vault(settings)
    with store.session() as session:
        assert load_private_key(session, vault, record_id) == key
        row = session.scalars(select(HostHook).where(HostHook.uuid == hook.uuid)).one()
        assert row.secret_encrypted is not None
        assert token_version(row.secret_encrypted) == 2
        secret = vault.decrypt(row.secret_encrypted, record_id=secret_record_id(hook.uuid))
        assert secret == b"s3cret-value"


def test_rotation_reloads_the_applications_vault(settings: Settings, store: Store) -> None:
    app = Repolink(settings, store=store)
    assert app.vault().current_version == 1
    hooks = app.hooks  # a service built before the rotation

    rotation = app.admin.rotate_secret_key()

    assert rotation.version == 2
    assert app.vault().current_version == 2
    # What the application encrypts from now on is under the new master key.
    app.host.create_repository("acme", "widgets")
    hooks.add_hook("acme", "widgets", "http://127.0.0.1:9/hook", secret="after-rotation")
    with store.session() as session:
        row = session.scalars(select(HostHook)).one()
        assert row.secret_encrypted is not None and token_version(row.secret_encrypted) == 2
