"""Repository connections as a service: connect (save, register, first fetch), show, disconnect.

Connecting saves the URL and the deploy key, optionally adds the key as a read-only access key
through the host's API (:class:`repolink.platform.register.HostAPI`), then tries a fetch at
once. The connection is saved before the fetch and kept whatever the fetch does, so the user
can fix the cause (add the access key, trust the host key) and fetch again. The outcome carries
the fetch result or the diagnosed error; the connection's state says the same.

Every step is its own transaction, and none is open while git runs or the host API is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete

from repolink.errors import RepolinkError
from repolink.git.progress import ProgressCallback
from repolink.keys import PrivateKey, PublicKey, generate_key
from repolink.platform.connections import (
    ConnectionInfo,
    create_connection,
    get_connection,
    import_private_key,
    load_connection_info,
    parse_connection_url,
)
from repolink.platform.fetch import FetchResult, FetchService
from repolink.platform.projects import get_project, remove_mirror
from repolink.platform.register import HostAPI
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import KEY_GENERATED, KEY_IMPORTED, RepositoryConnection
from repolink.store.models.rotation import connection_key_ids
from repolink.store.types import Clock
from repolink.vault import VaultLoader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectOutcome:
    """The saved connection (state after the first fetch), its deploy key's public half, and
    either the fetch result or the error that fetch failed with."""

    connection: ConnectionInfo
    public_key: PublicKey
    generated: bool
    fetch: FetchResult | None
    error: RepolinkError | None

    @property
    def ok(self) -> bool:
        return self.error is None


class ConnectionService:
    """A project's repository connection: connect, show, disconnect; deploy keys imported."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        vault: VaultLoader,
        fetches: FetchService,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._fetches = fetches
        self._clock = clock

    def connect(
        self,
        project: str,
        url: str,
        *,
        key: PrivateKey | None = None,
        key_type: str = "ed25519",
        bits: int | None = None,
        register_on: HostAPI | None = None,
        before_fetch: Callable[[ConnectionInfo], None] | None = None,
        on_registered: Callable[[ConnectionInfo], None] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ConnectOutcome:
        """Connect ``project`` to ``url`` with ``key`` (imported) or a new key of ``key_type``.

        ``before_fetch`` sees the saved connection first (to show the public key). With
        ``register_on``, the deploy key is then added as a read-only access key of the
        repository through that host API (``on_registered`` is told); a refusal there raises,
        and the connection stays saved. A failed fetch does not raise: it is in the outcome's
        ``error`` and the connection's state.
        """
        parsed = parse_connection_url(url)
        with self._store.session() as session:
            slug = get_project(session, project).slug
        generated = key is None
        deploy_key = key if key is not None else generate_key(key_type, bits, f"repolink-{slug}")
        vault = self._vault()
        with self._store.session() as session:
            saved = create_connection(
                session,
                vault,
                project,
                parsed,
                deploy_key,
                origin=KEY_GENERATED if generated else KEY_IMPORTED,
                now=self._clock(),
            )
        if before_fetch is not None:
            before_fetch(saved)
        if register_on is not None:
            register_on.register_access_key(
                saved.url, saved.deploy_key.public_key, label=f"repolink {saved.project}"
            )
            log.info(
                "added deploy key %s of project %s on the host",
                saved.deploy_key.fingerprint_sha256,
                saved.project,
            )
            if on_registered is not None:
                on_registered(saved)
        result: FetchResult | None = None
        error: RepolinkError | None = None
        try:
            result = self._fetches.fetch_connection(saved.id, on_progress=on_progress)
        except RepolinkError as exc:
            error = exc
        return ConnectOutcome(
            self.connection_info(project), deploy_key.public_key, generated, result, error
        )

    def connection_info(self, project: str) -> ConnectionInfo:
        """The connection of ``project``: URL, state of the last fetch, deploy key, index
        size; ``connection_not_found`` when it has none."""
        with self._store.session() as session:
            return load_connection_info(session, project)

    def disconnect(self, project: str) -> None:
        """Remove the connection of ``project``: its index, mirror and every key it owned.

        The rows go in one transaction; the mirror after it (waiting for a running fetch).
        """
        with self._store.session() as session:
            connection = get_connection(session, project)
            connection_id, owned_keys = connection.id, connection_key_ids(session, connection)
            session.execute(
                delete(RepositoryConnection).where(RepositoryConnection.id == connection_id)
            )
            session.execute(delete(KeyRecord).where(KeyRecord.id.in_(owned_keys)))
        remove_mirror(self._settings, connection_id)
        log.info("disconnected project %s", project)

    @staticmethod
    def import_key(data: str | bytes, passphrase: str | bytes | None = None) -> PrivateKey:
        """A private key in any format :mod:`repolink.keys` reads; refusals become
        ``invalid_private_key`` (with the precise reason and its fix kept)."""
        return import_private_key(data, passphrase)
