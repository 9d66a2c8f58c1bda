"""Repository connections as a service: connect (save, register, first fetch), register again,
show, disconnect.

Connecting saves the URL and the deploy key, optionally adds the key as a read-only access key
through the host's API (:class:`repolink.platform.register.HostAPI`), then tries a fetch at
once. The connection is saved first and kept whatever registration or fetch does, so the user
can fix the cause (the token, the host key, add the access key by hand) and retry on the same
connection and key: :meth:`ConnectionService.register` registers its deploy key again, then
fetches. The outcome carries the fetch result or the error, and which step failed; the
connection's state says the same, and it remembers the API it was registered on (a key
rotation adds and removes keys there, :mod:`repolink.platform.rotation`).

Every step is its own transaction, and none is open while git runs or the host API is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from repolink.errors import Conflict, RepolinkError
from repolink.git.progress import ProgressCallback
from repolink.keys import PrivateKey, PublicKey, generate_key, parse_public_key
from repolink.platform.connections import (
    ConnectionInfo,
    create_connection,
    get_connection,
    import_private_key,
    load_connection_info,
    parse_connection_url,
    record_failure,
    record_registration,
)
from repolink.platform.fetch import FetchResult, FetchService
from repolink.platform.prepared_keys import (
    PreparedKey,
    discard_prepared,
    load_prepared,
    prepared_record_ids,
    store_prepared,
    take_prepared,
)
from repolink.platform.projects import get_project, remove_mirror
from repolink.platform.register import HostAPI, host_api_from, repository_path
from repolink.platform.targets import TargetPolicy
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import (
    KEY_GENERATED,
    KEY_IMPORTED,
    STATE_OK,
    URL_FROM_CLIENT,
    URL_FROM_CLIENT_OWN_HOST,
    RepositoryConnection,
)
from repolink.store.models.rotation import connection_key_ids
from repolink.store.types import Clock
from repolink.vault import VaultLoader

log = logging.getLogger(__name__)


STEP_REGISTER = "register"
STEP_FETCH = "fetch"


@dataclass(frozen=True)
class Registration:
    """The deploy key is an access key of ``repository`` on the host API at ``api_root``;
    ``added`` is False when the repository had it already."""

    api_root: str
    host: str
    repository: str
    added: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "api_root": self.api_root,
            "host": self.host,
            "repository": self.repository,
            "added": self.added,
        }


@dataclass(frozen=True)
class SavedConnection:
    """A connection saved with no fetch yet (state ``unknown``). ``replaced``: it took the
    place of the project's earlier connection. ``private_key``: the deploy key generated for
    it, for the one answer that offers it for download; ``None`` for an imported key."""

    connection: ConnectionInfo
    replaced: bool
    private_key: PrivateKey | None = field(default=None, repr=False)
    prepared: bool = False
    """The deploy key is the project's prepared key (generated before, its private half
    offered then)."""


@dataclass(frozen=True)
class ConnectOutcome:
    """The saved connection (state after the first fetch), its deploy key's public half, the
    registration on the host if asked for, and either the fetch result or the error of the
    step (``failed_step``: register or fetch) that failed."""

    connection: ConnectionInfo
    public_key: PublicKey
    generated: bool
    fetch: FetchResult | None
    error: RepolinkError | None
    registration: Registration | None = None
    failed_step: str | None = None

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
        register_on_host: bool = False,
        host_api_url: str | None = None,
        before_fetch: Callable[[ConnectionInfo], None] | None = None,
        on_registered: Callable[[Registration], None] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ConnectOutcome:
        """Connect ``project`` to ``url`` with ``key`` (imported) or a new key of ``key_type``.

        ``before_fetch`` sees the saved connection first (to show the public key). With
        ``register_on_host``, the deploy key is then added as a read-only access key of the
        repository through the host API at ``host_api_url`` (default: the ``host_api_url``
        setting; the token is the ``host_api_token`` setting), and ``on_registered`` is told.
        A missing or malformed API is refused before anything is saved. A failed registration
        or fetch does not raise: it is in the outcome and the connection's state.
        """
        parsed = parse_connection_url(url)
        host_api = host_api_from(self._settings, host_api_url) if register_on_host else None
        generated = key is None
        deploy_key = self._key_to_use(project, key, key_type, bits)
        vault = self._vault()
        with self._store.session() as session:
            saved = create_connection(
                session,
                vault,
                project,
                parsed,
                _chosen_key(session, project, deploy_key),
                origin=KEY_GENERATED if generated else KEY_IMPORTED,
                now=self._clock(),
            )
        if before_fetch is not None:
            before_fetch(saved)
        public_key = parse_public_key(saved.deploy_key.public_key).key
        return self._register_then_fetch(
            saved, public_key, generated, host_api, on_registered, on_progress
        )

    def save(
        self,
        project: str,
        url: str,
        *,
        key: PrivateKey | None = None,
        key_type: str = "ed25519",
        bits: int | None = None,
        replace: bool = False,
        targets: TargetPolicy | None = None,
    ) -> SavedConnection:
        """Save ``project``'s connection to ``url`` with ``key`` (imported) or a new key of
        ``key_type``, and fetch nothing: the caller queues the first fetch.

        ``targets``: the URL's host must be one the network policy allows (an API client's
        URL). ``replace``: a connection the project has already is replaced — its index,
        mirror and keys removed — in the same transaction that saves the new one; otherwise
        it is ``connection_exists``. Everything is validated before anything is stored.
        """
        parsed = parse_connection_url(url)
        url_origin = None
        if targets is not None:
            targets.check(parsed)
            # Recorded so that every fetch judges the URL's host again (DNS may change).
            url_origin = (
                URL_FROM_CLIENT_OWN_HOST
                if targets.is_own_host(*parsed.host_port)
                else URL_FROM_CLIENT
            )
        generated = key is None
        deploy_key = self._key_to_use(project, key, key_type, bits)
        vault = self._vault()
        replaced: str | None = None
        with self._store.session() as session:
            if replace:
                replaced = _remove_connection(session, project)
            saved = create_connection(
                session,
                vault,
                project,
                parsed,
                _chosen_key(session, project, deploy_key),
                origin=KEY_GENERATED if generated else KEY_IMPORTED,
                url_origin=url_origin,
                now=self._clock(),
            )
        if replaced is not None:
            remove_mirror(self._settings, replaced)
            log.info("replaced the repository connection of project %s", saved.project)
        return SavedConnection(
            saved,
            replaced=replaced is not None,
            private_key=deploy_key if generated else None,
            prepared=deploy_key is None,
        )

    def prepare_key(
        self, project: str, *, key_type: str = "ed25519", bits: int | None = None
    ) -> PreparedKey:
        """Generate a deploy key for ``project`` before its connection is saved (replacing the
        one prepared before): the next :meth:`save` or :meth:`connect` without a key of its
        own uses it. The answer holds the private half, for the one download it is offered."""
        with self._store.session() as session:
            slug = get_project(session, project).slug
        key = generate_key(key_type, bits, f"repolink-{slug}")
        vault = self._vault()
        with self._store.session() as session:
            return store_prepared(session, vault, get_project(session, project), key)

    def prepared_key(self, project: str) -> PreparedKey | None:
        """``project``'s prepared deploy key (public facts only), or ``None``."""
        with self._store.session() as session:
            return load_prepared(session, get_project(session, project))

    def _key_to_use(
        self, project: str, key: PrivateKey | None, key_type: str, bits: int | None
    ) -> PrivateKey | None:
        """``key``; else the project's prepared key (``None``); else a new key of ``key_type``."""
        if key is not None:
            return key
        with self._store.session() as session:
            row = get_project(session, project)
            if prepared_record_ids(session, row.id):
                return None
            slug = row.slug
        return generate_key(key_type, bits, f"repolink-{slug}")

    def register(
        self,
        project: str,
        *,
        host_api_url: str | None = None,
        on_registered: Callable[[Registration], None] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ConnectOutcome:
        """Register the current deploy key of ``project``'s connection (no new key) as a
        read-only access key, then fetch: the retry of a registration that failed.

        The API is ``host_api_url``, else the one the connection was registered on, else the
        ``host_api_url`` setting. A repository that has the key already counts as registered.
        """
        with self._store.session() as session:
            saved = load_connection_info(session, project)
        host_api = host_api_from(self._settings, host_api_url or saved.registered_api_root)
        public_key = parse_public_key(saved.deploy_key.public_key).key
        generated = saved.deploy_key.origin == KEY_GENERATED
        return self._register_then_fetch(
            saved, public_key, generated, host_api, on_registered, on_progress
        )

    def _register_then_fetch(
        self,
        saved: ConnectionInfo,
        public_key: PublicKey,
        generated: bool,
        host_api: HostAPI | None,
        on_registered: Callable[[Registration], None] | None,
        on_progress: ProgressCallback | None,
    ) -> ConnectOutcome:
        registration: Registration | None = None
        if host_api is not None:
            try:
                registration = self._register(saved, host_api)
            except RepolinkError as exc:
                self._record_registration_failure(saved, exc)
                return ConnectOutcome(
                    self.connection_info(saved.project),
                    public_key,
                    generated,
                    None,
                    exc,
                    failed_step=STEP_REGISTER,
                )
            if on_registered is not None:
                on_registered(registration)
        result: FetchResult | None = None
        error: RepolinkError | None = None
        try:
            result = self._fetches.fetch_connection(saved.id, on_progress=on_progress)
        except RepolinkError as exc:
            error = exc
        return ConnectOutcome(
            self.connection_info(saved.project),
            public_key,
            generated,
            result,
            error,
            registration=registration,
            failed_step=STEP_FETCH if error is not None else None,
        )

    def _register(self, saved: ConnectionInfo, host_api: HostAPI) -> Registration:
        added = host_api.register_access_key(
            saved.url, saved.deploy_key.public_key, label=f"repolink {saved.project}"
        )
        with self._store.session() as session:
            record_registration(session, saved.id, host_api.root)
        log.info(
            "deploy key %s of project %s is an access key on %s%s",
            saved.deploy_key.fingerprint_sha256,
            saved.project,
            host_api.host,
            "" if added else " (it was already)",
        )
        return Registration(host_api.root, host_api.host, repository_path(saved.url), added)

    def _record_registration_failure(self, saved: ConnectionInfo, error: RepolinkError) -> None:
        # A connection that fetches fine keeps its state: the key works, whatever the API said.
        if saved.state == STATE_OK:
            return
        with self._store.session() as session:
            record_failure(session, saved.id, attempted_at=self._clock(), error=error)

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
            connection_id = _remove_connection(session, project)
            if connection_id is None:
                get_connection(session, project)  # raises connection_not_found
        if connection_id is not None:
            remove_mirror(self._settings, connection_id)
        log.info("disconnected project %s", project)

    @staticmethod
    def import_key(data: str | bytes, passphrase: str | bytes | None = None) -> PrivateKey:
        """A private key in any format :mod:`repolink.keys` reads; refusals become
        ``invalid_private_key`` (with the precise reason and its fix kept)."""
        return import_private_key(data, passphrase)


def _chosen_key(session: Session, project: str, key: PrivateKey | None) -> PrivateKey | KeyRecord:
    """The key a connection is saved with: ``key``, or (``None``) the project's prepared key.
    A prepared key not used is deleted: the connection has its own."""
    project_id = get_project(session, project).id
    if key is not None:
        discard_prepared(session, project_id)
        return key
    record = take_prepared(session, project_id)
    if record is None:
        raise Conflict(
            "prepared_key_gone",
            "the generated deploy key was replaced or used while saving",
            "generate the key again, or save again to generate a new one",
            context={"project": project},
        )
    return record


def _remove_connection(session: Session, project: str) -> str | None:
    """Delete ``project``'s connection (its index and refs by cascade) and every key it owned;
    its id, for the mirror to be removed after the transaction; ``None`` when it had none."""
    row = get_project(session, project)
    connection = session.scalar(
        select(RepositoryConnection).where(RepositoryConnection.project_id == row.id)
    )
    if connection is None:
        return None
    connection_id, owned_keys = connection.id, connection_key_ids(session, connection)
    session.execute(delete(RepositoryConnection).where(RepositoryConnection.id == connection_id))
    session.execute(delete(KeyRecord).where(KeyRecord.id.in_(owned_keys)))
    return connection_id
