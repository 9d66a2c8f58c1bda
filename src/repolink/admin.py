"""Master-key rotation across every table that holds vault ciphertext.

Each owner of encrypted columns provides a ``reencrypt(session, vault) -> int``; this module is
the one list of them, so a rotation can never forget a kind of secret. :class:`AdminService`
is what adapters call (``repolink admin``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from repolink.host.hooks import reencrypt_hook_secrets
from repolink.platform.webhooks_in import reencrypt_webhook_secrets
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.key_records import reencrypt_all as reencrypt_key_records
from repolink.vault import Vault, VaultLoader, rotate_master_key

log = logging.getLogger(__name__)

Reencryptor = Callable[[Session, Vault], int]

REENCRYPTORS: tuple[Reencryptor, ...] = (
    reencrypt_key_records,
    reencrypt_hook_secrets,
    reencrypt_webhook_secrets,
)


@dataclass(frozen=True)
class MasterKeyRotation:
    """What a rotation did: the master key version now in use and the rows it rewrote."""

    version: int
    reencrypted: int


def reencrypt_everything(session: Session, vault: Vault) -> int:
    """Re-encrypt every stored secret not under the vault's current master key."""
    return sum(reencrypt(session, vault) for reencrypt in REENCRYPTORS)


class AdminService:
    """Operator tasks on the stored secrets.

    It holds the application's :class:`~repolink.vault.VaultLoader`, not a vault: a rotation
    changes the master keys, and every service of the application must see the new ones.
    """

    def __init__(self, settings: Settings, store: Store, vault: VaultLoader) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault

    def reencrypt_with_current_key(self) -> MasterKeyRotation:
        """Re-encrypt every stored secret with the newest master key, after an operator added
        a version by hand (REPOLINK_SECRET_KEY, or the key file): the keys are read again."""
        vault = self._vault.reload()
        with self._store.session() as session:
            count = reencrypt_everything(session, vault)
        return MasterKeyRotation(version=vault.current_version, reencrypted=count)

    def rotate_secret_key(self) -> MasterKeyRotation:
        """Add a master key version and re-encrypt every stored secret with it.

        The re-encryption is one transaction. The key file is extended first; if the
        transaction fails, the rows stay on their old versions, which remain in the file and
        keep working.
        """
        version = rotate_master_key(self._settings)
        rotation = self.reencrypt_with_current_key()
        log.info("master key rotated to version %d", version)
        return rotation
