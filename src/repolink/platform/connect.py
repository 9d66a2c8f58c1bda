"""Connecting a project to a repository: save URL and deploy key, then try a fetch at once.

The connection is saved before the fetch and kept whatever the fetch does, so the user can fix
the cause (add the access key, trust the host key) and fetch again. The outcome carries the
fetch result or the diagnosed error; the connection's state says the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from repolink.errors import RepolinkError
from repolink.git.progress import ProgressCallback
from repolink.keys import PrivateKey, PublicKey, generate_key
from repolink.platform.connections import (
    ConnectionInfo,
    connection_info,
    create_connection,
    parse_connection_url,
)
from repolink.platform.fetch import FetchResult, fetch_connection
from repolink.platform.projects import get_project
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.platform import KEY_GENERATED, KEY_IMPORTED
from repolink.vault import Vault, load_vault

log = logging.getLogger(__name__)

READ_ONLY_INSTRUCTION = (
    "add this public key as a read-only access key (deploy key) on the repository, "
    "then run `repolink fetch {project}`"
)


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


def connect_repository(
    store: Store,
    settings: Settings,
    project: str,
    url: str,
    *,
    key: PrivateKey | None = None,
    key_type: str = "ed25519",
    bits: int | None = None,
    vault: Vault | None = None,
    before_fetch: Callable[[ConnectionInfo], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ConnectOutcome:
    """Connect ``project`` to ``url`` with ``key`` (imported) or a new key of ``key_type``.

    ``before_fetch`` sees the saved connection before the first fetch starts (to show the
    public key, or register it on the host). A failed fetch does not raise: it is in the
    outcome's ``error`` and the connection's state.
    """
    parsed = parse_connection_url(url)
    with store.session() as session:
        slug = get_project(session, project).slug
    generated = key is None
    deploy_key = key if key is not None else generate_key(key_type, bits, f"repolink-{slug}")
    vault = vault or load_vault(settings)
    with store.session() as session:
        saved = create_connection(
            session,
            vault,
            project,
            parsed,
            deploy_key,
            origin=KEY_GENERATED if generated else KEY_IMPORTED,
        )
    if before_fetch is not None:
        before_fetch(saved)
    result: FetchResult | None = None
    error: RepolinkError | None = None
    try:
        result = fetch_connection(store, settings, saved.id, vault=vault, on_progress=on_progress)
    except RepolinkError as exc:
        error = exc
    with store.session() as session:
        current = connection_info(session, project)
    return ConnectOutcome(current, deploy_key.public_key, generated, result, error)
