"""Rotating a connection's deploy key with overlap: never a moment without a working key.

:class:`DeployKeyService` runs it, one transaction per step and never one around the fetch:

1. :meth:`~DeployKeyService.start_rotation` makes a new key pair for the connection, or takes
   one the caller imports (stored encrypted, like every deploy key), and records it as the
   connection's *pending* key. The deploy key is not touched: fetches keep using it. The
   caller shows the new public half so the user can add it to the repository as a read-only
   access key, beside the current one.
2. :meth:`~DeployKeyService.complete_rotation` fetches into the mirror with the pending key —
   a real fetch, under the mirror's lock, outside any transaction. Only when that succeeds
   does the pending key become the deploy key and the old one retired, in one transaction that
   re-checks nothing moved meanwhile. When the fetch fails its diagnosis (``auth_failed`` …) is
   raised and nothing changes.
3. :meth:`~DeployKeyService.abort_rotation` discards the pending key.

On a connection whose deploy key was registered on a host API (``registered_api_root``,
:mod:`repolink.platform.register`), the host follows: the new key is added there as a read-only
access key when the rotation starts (a refusal discards the new key and raises: nothing
started), the retired key is removed from it at completion, and a discarded key (abort, or a
pending key replaced) is removed too. A removal that fails does not undo the step: the step's
result carries the error (``host_error``) so the adapter can say what to remove by hand.

A retired key keeps its record (public half, fingerprints, dates: the audit trail, and what
``repolink keys list`` shows), but its encrypted private half is erased at retirement: a
retired key is never used again (:mod:`repolink.platform.fetch` refuses it), so keeping it
would only leave something to steal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repolink.errors import Conflict, NotFound, RepolinkError
from repolink.git.progress import ProgressCallback
from repolink.keys import PrivateKey, generate_key
from repolink.platform.connections import get_connection
from repolink.platform.fetch import FetchResult, FetchService
from repolink.platform.register import HostAPI, host_api_from, repository_path
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.key_records import get_key_record, store_private_key
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import (
    KEY_GENERATED,
    KEY_IMPORTED,
    Project,
    RepositoryConnection,
)
from repolink.store.models.rotation import ROTATION_COMPLETED, ROTATION_PENDING, KeyRotation
from repolink.store.types import Clock
from repolink.vault import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyFacts:
    """The public facts of a key record; never its private half."""

    id: str
    key_type: str
    bits: int
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    created_at: datetime

    @classmethod
    def of(cls, record: KeyRecord) -> KeyFacts:
        return cls(
            id=record.id,
            key_type=record.key_type,
            bits=record.bits,
            public_key=record.public_key,
            fingerprint_sha256=record.fingerprint_sha256,
            fingerprint_md5=record.fingerprint_md5,
            created_at=record.created_at,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "key_type": self.key_type,
            "bits": self.bits,
            "public_key": self.public_key,
            "fingerprint_sha256": self.fingerprint_sha256,
            "fingerprint_md5": self.fingerprint_md5,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class PendingRotation:
    """A started rotation: the deploy key in use and the new key waiting to be proven."""

    project: str
    url: str
    current_key: KeyFacts
    new_key: KeyFacts
    started_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "url": self.url,
            "state": ROTATION_PENDING,
            "current_key": self.current_key.as_dict(),
            "new_key": self.new_key.as_dict(),
            "started_at": self.started_at.isoformat(),
        }


@dataclass(frozen=True)
class OnHost:
    """What a rotation step did to the access keys of a registered connection's repository
    (``repository`` on ``host``); ``error`` is why a removal failed, the step itself done."""

    host: str
    repository: str
    error: RepolinkError | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "repository": self.repository,
            "error": self.error.as_dict() if self.error else None,
        }


@dataclass(frozen=True)
class RotationStarted:
    """What :meth:`DeployKeyService.start_rotation` did; ``replaced`` is the pending key it
    discarded, if any; ``on_host``: the new key is an access key there (and the replaced one
    was removed, unless its ``error`` says why not).

    ``private_key`` is the generated key itself, only when the caller asked to keep it (to hand
    it out once, for download); it is never part of :meth:`as_dict`, nor of the ``repr``."""

    rotation: PendingRotation
    replaced: KeyFacts | None
    on_host: OnHost | None = None
    origin: str = KEY_GENERATED
    private_key: PrivateKey | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, object]:
        return {
            **self.rotation.as_dict(),
            "origin": self.origin,
            "replaced_key": self.replaced.as_dict() if self.replaced else None,
            "on_host": self.on_host.as_dict() if self.on_host else None,
        }


@dataclass(frozen=True)
class RotationAborted:
    """The discarded pending key; ``on_host``: it was removed from there (unless ``error``)."""

    project: str
    discarded: KeyFacts
    on_host: OnHost | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "discarded_key": self.discarded.as_dict(),
            "on_host": self.on_host.as_dict() if self.on_host else None,
        }


@dataclass(frozen=True)
class RotationCompleted:
    """The proven key is the deploy key now; ``retired_key`` was the deploy key before."""

    project: str
    deploy_key: KeyFacts
    retired_key: KeyFacts
    retired_at: datetime
    fetch: FetchResult
    on_host: OnHost | None = None
    """The retired key was removed from there, unless its ``error`` says why not."""

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "state": ROTATION_COMPLETED,
            "deploy_key": self.deploy_key.as_dict(),
            "retired_key": self.retired_key.as_dict(),
            "retired_at": self.retired_at.isoformat(),
            "fetch": self.fetch.as_dict(),
            "on_host": self.on_host.as_dict() if self.on_host else None,
        }


class DeployKeyService:
    """Rotation of a connection's deploy key: start, complete (proven by a fetch), abort."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        vault: Callable[[], Vault],
        fetches: FetchService,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._fetches = fetches
        self._clock = clock

    def pending_rotation(self, project: str) -> PendingRotation | None:
        """The pending rotation of ``project``'s connection, if one was started."""
        with self._store.session() as session:
            connection = get_connection(session, project)
            rotation = _pending_row(session, connection.id)
            if rotation is None:
                return None
            return _pending_info(session, connection, rotation)

    def start_rotation(
        self,
        project: str,
        *,
        key: PrivateKey | None = None,
        key_type: str = "ed25519",
        bits: int | None = None,
        replace_pending: bool = False,
        keep_private_key: bool = False,
    ) -> RotationStarted:
        """Make ``key`` (imported), or a new key of ``key_type``, the pending key of
        ``project``'s connection.

        Refused with ``rotation_pending`` while another rotation is pending, unless
        ``replace_pending`` (which discards that one's key), and with ``rotation_same_key`` for
        an imported key that is the deploy key already. ``keep_private_key``: the answer holds
        a generated key itself (:attr:`RotationStarted.private_key`), to be handed out once.
        """
        with self._store.session() as session:
            connection = get_connection(session, project)
            slug = _slug(session, connection)
            if not replace_pending:
                _refuse_if_pending(session, connection, slug)
            if key is not None:
                _refuse_current_key(session, connection, slug, key)
            host_api = self._host_api_of(connection)
        origin = KEY_GENERATED if key is None else KEY_IMPORTED
        if key is None:
            # Outside any transaction: an RSA key takes a while; no one should wait on it.
            key = generate_key(key_type, bits, f"repolink-{slug}")
        vault = self._vault()
        with self._store.session() as session:
            connection = get_connection(session, project)
            if origin == KEY_IMPORTED:
                _refuse_current_key(session, connection, slug, key)
            replaced: KeyFacts | None = None
            existing = _pending_row(session, connection.id)
            if existing is not None:
                if not replace_pending:
                    _refuse_if_pending(session, connection, slug)
                replaced = KeyFacts.of(get_key_record(session, existing.new_key_id))
                _discard(session, existing)
            record = store_private_key(session, vault, key, label=f"deploy key of project {slug}")
            rotation = KeyRotation(
                connection_id=connection.id,
                new_key_id=record.id,
                key_origin=origin,
                state=ROTATION_PENDING,
                started_at=self._clock(),
            )
            session.add(rotation)
            try:
                session.flush()
            except IntegrityError:
                # Another start won the race between our check and this insert.
                raise _pending_conflict(slug, None) from None
            started = _pending_info(session, connection, rotation)
            rotation_id = rotation.id
        on_host = None
        if host_api is not None:
            on_host = self._register_new_key(host_api, started, rotation_id, replaced)
        log.info(
            "started key rotation of project %s: pending %s key %s%s",
            slug,
            origin,
            started.new_key.fingerprint_sha256,
            f" (replaced {replaced.fingerprint_sha256})" if replaced else "",
        )
        kept = key if keep_private_key and origin == KEY_GENERATED else None
        return RotationStarted(started, replaced, on_host, origin=origin, private_key=kept)

    def _register_new_key(
        self,
        host_api: HostAPI,
        started: PendingRotation,
        rotation_id: str,
        replaced: KeyFacts | None,
    ) -> OnHost:
        """The new key on the host, then the replaced one off it. A refused registration
        discards the new key (a rotation whose key the host lacks would only fail later)."""
        try:
            host_api.register_access_key(
                started.url, started.new_key.public_key, label=f"repolink {started.project}"
            )
        except RepolinkError:
            with self._store.session() as session:
                rotation = session.get(KeyRotation, rotation_id)
                if rotation is not None and rotation.state == ROTATION_PENDING:
                    _discard(session, rotation)
            if replaced is not None:
                # Its rotation is gone already; leave no key on the host that nothing names.
                _remove_from_host(host_api, started.url, replaced)
            raise
        if replaced is None:
            return _on_host(host_api, started.url)
        return _remove_from_host(host_api, started.url, replaced)

    def complete_rotation(
        self, project: str, *, on_progress: ProgressCallback | None = None
    ) -> RotationCompleted:
        """Fetch with the pending key; only if that succeeds, make it the deploy key and retire
        the old one. A failed fetch raises its diagnosis and changes nothing."""
        with self._store.session() as session:
            connection = get_connection(session, project)
            rotation = _pending_row(session, connection.id)
            if rotation is None:
                raise _not_pending(_slug(session, connection))
            connection_id, rotation_id = connection.id, rotation.id
            old_key_id, new_key_id = connection.deploy_key_id, rotation.new_key_id
            origin = rotation.key_origin
            url, host_api = connection.url, self._host_api_of(connection)
        # The proving fetch, between two transactions: it takes the mirror's lock, not ours.
        result = self._fetches.fetch_connection(
            connection_id, on_progress=on_progress, key_record_id=new_key_id
        )
        retired_at = self._clock()
        with self._store.session() as session:
            _swap(
                session,
                project,
                rotation_id,
                connection_id,
                (old_key_id, new_key_id, origin),
                retired_at,
            )
            old = get_key_record(session, old_key_id)
            old.retired_at = retired_at
            old.private_key_encrypted = None
            old.vault_key_version = None
            session.flush()
            completed = RotationCompleted(
                project=result.project,
                deploy_key=KeyFacts.of(get_key_record(session, new_key_id)),
                retired_key=KeyFacts.of(old),
                retired_at=retired_at,
                fetch=result,
            )
        log.info(
            "completed key rotation of project %s: deploy key %s, retired %s",
            completed.project,
            completed.deploy_key.fingerprint_sha256,
            completed.retired_key.fingerprint_sha256,
        )
        if host_api is None:
            return completed
        return replace(completed, on_host=_remove_from_host(host_api, url, completed.retired_key))

    def abort_rotation(self, project: str) -> RotationAborted:
        """Discard the pending key of ``project`` (and remove it from the host of a registered
        connection); the deploy key stays."""
        with self._store.session() as session:
            connection = get_connection(session, project)
            rotation = _pending_row(session, connection.id)
            if rotation is None:
                raise _not_pending(_slug(session, connection))
            url, host_api = connection.url, self._host_api_of(connection)
            discarded = KeyFacts.of(get_key_record(session, rotation.new_key_id))
            _discard(session, rotation)
        log.info(
            "aborted key rotation of project %s: discarded %s",
            project,
            discarded.fingerprint_sha256,
        )
        on_host = _remove_from_host(host_api, url, discarded) if host_api is not None else None
        return RotationAborted(project, discarded, on_host)

    def _host_api_of(self, connection: RepositoryConnection) -> HostAPI | None:
        """The API a registered connection's keys are added to and removed from; checked before
        a step changes anything, so a missing token refuses the step rather than half of it."""
        if connection.registered_api_root is None:
            return None
        return host_api_from(self._settings, connection.registered_api_root)


def _on_host(host_api: HostAPI, url: str, error: RepolinkError | None = None) -> OnHost:
    return OnHost(host_api.host, repository_path(url), error)


def _remove_from_host(host_api: HostAPI, url: str, key: KeyFacts) -> OnHost:
    try:
        host_api.remove_access_key(url, key.public_key)
    except RepolinkError as exc:
        log.warning(
            "could not remove key %s from the host %s: %s",
            key.fingerprint_sha256,
            host_api.host,
            exc.code,
        )
        return _on_host(host_api, url, exc)
    return _on_host(host_api, url)


def _swap(
    session: Session,
    project: str,
    rotation_id: str,
    connection_id: str,
    keys: tuple[str, str, str],
    retired_at: datetime,
) -> None:
    """Complete the rotation and point the connection at the new key, or ``rotation_changed``.

    Compare-and-set, so an abort, a replacement or another completion that ran while we
    fetched is noticed instead of overwritten; the rotation first, as an abort deletes the very
    key the connection would be pointed at. ``keys``: the old key's id, the new key's id and
    the new key's origin (generated or imported).
    """
    old_key_id, new_key_id, origin = keys
    finished = session.execute(
        update(KeyRotation)
        .where(KeyRotation.id == rotation_id, KeyRotation.state == ROTATION_PENDING)
        .values(state=ROTATION_COMPLETED, old_key_id=old_key_id, completed_at=retired_at)
    )
    swapped = (
        session.execute(
            update(RepositoryConnection)
            .where(
                RepositoryConnection.id == connection_id,
                RepositoryConnection.deploy_key_id == old_key_id,
            )
            .values(deploy_key_id=new_key_id, key_origin=origin)
        )
        if _rowcount(finished) == 1
        else None
    )
    if swapped is None or _rowcount(swapped) != 1:
        raise Conflict(
            "rotation_changed",
            f"the key rotation of project {project} was aborted, replaced or completed "
            "while the new key was being tried",
            "look at the project's keys, then start a new rotation if needed",
            context={"project": project},
        )


def _pending_row(session: Session, connection_id: str) -> KeyRotation | None:
    return session.scalar(
        select(KeyRotation).where(
            KeyRotation.connection_id == connection_id, KeyRotation.state == ROTATION_PENDING
        )
    )


def _pending_info(
    session: Session, connection: RepositoryConnection, rotation: KeyRotation
) -> PendingRotation:
    return PendingRotation(
        project=_slug(session, connection),
        url=connection.url,
        current_key=KeyFacts.of(get_key_record(session, connection.deploy_key_id)),
        new_key=KeyFacts.of(get_key_record(session, rotation.new_key_id)),
        started_at=rotation.started_at,
    )


def _refuse_if_pending(session: Session, connection: RepositoryConnection, slug: str) -> None:
    rotation = _pending_row(session, connection.id)
    if rotation is not None:
        pending = get_key_record(session, rotation.new_key_id)
        raise _pending_conflict(slug, pending.fingerprint_sha256)


def _refuse_current_key(
    session: Session, connection: RepositoryConnection, slug: str, key: PrivateKey
) -> None:
    current = get_key_record(session, connection.deploy_key_id)
    fingerprint = key.public_key.sha256_fingerprint
    if current.fingerprint_sha256 == fingerprint:
        raise Conflict(
            "rotation_same_key",
            f"{fingerprint} is the deploy key of project {slug} already",
            "rotate to another key: a new one, or another key pair of your own",
            context={"project": slug, "fingerprint": fingerprint},
        )


def _discard(session: Session, rotation: KeyRotation) -> None:
    key_id = rotation.new_key_id
    session.execute(delete(KeyRotation).where(KeyRotation.id == rotation.id))
    session.execute(delete(KeyRecord).where(KeyRecord.id == key_id))


def _slug(session: Session, connection: RepositoryConnection) -> str:
    owner = session.get(Project, connection.project_id)
    return owner.slug if owner is not None else connection.project_id


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _pending_conflict(slug: str, fingerprint: str | None) -> Conflict:
    which = f" (new key {fingerprint})" if fingerprint else ""
    return Conflict(
        "rotation_pending",
        f"project {slug} has a key rotation pending already{which}",
        "finish it (complete it once the new key is on the repository), discard it, or start "
        "over with another new key in its place",
        context={"project": slug},
    )


def _not_pending(slug: str) -> NotFound:
    return NotFound(
        "rotation_not_pending",
        f"project {slug} has no key rotation pending",
        "start a key rotation first",
        context={"project": slug},
    )
