"""Repository connections: a project's SSH URL, its deploy key and the last fetch's outcome.

The deploy key is a :class:`~repolink.store.models.KeyRecord` (private half encrypted by the
vault); the connection keeps only its id. The URL is stored as the user gave it, after
:func:`repolink.urls.parse_ssh_url` accepted it, and parsed again before every use.

This module holds the records adapters see and the look-ups and writes the platform's services
share inside their own transactions; :class:`repolink.platform.connect.ConnectionService` is
what adapters call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from repolink.errors import Conflict, KeyFormatError, NotFound, RepolinkError, URLError
from repolink.git.diagnosis import invalid_private_key, invalid_url
from repolink.keys import PrivateKey, parse_private_key
from repolink.platform.fetch_outcome import record_fetch_success
from repolink.platform.projects import get_project
from repolink.store.key_records import get_key_record, store_private_key
from repolink.store.models.fetch_runs import RUN_RUNNING, FetchRun
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import (
    STATE_FAILED,
    STATE_FETCHING,
    STATE_UNKNOWN,
    Commit,
    Ref,
    RepositoryConnection,
    new_id,
)
from repolink.store.plain import CoreReader
from repolink.store.types import utcnow
from repolink.urls import SSHURL, parse_ssh_url
from repolink.vault import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployKeyInfo:
    """The public facts of a deploy key; its private half is never part of any answer."""

    id: str
    key_type: str
    bits: int
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    origin: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, record: KeyRecord, origin: str) -> DeployKeyInfo:
        """The public facts of ``record``, a deploy key of ``origin`` (generated, imported)."""
        return cls(
            id=record.id,
            key_type=record.key_type,
            bits=record.bits,
            public_key=record.public_key,
            fingerprint_sha256=record.fingerprint_sha256,
            fingerprint_md5=record.fingerprint_md5,
            origin=origin,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "key_type": self.key_type,
            "bits": self.bits,
            "public_key": self.public_key,
            "fingerprint_sha256": self.fingerprint_sha256,
            "fingerprint_md5": self.fingerprint_md5,
            "origin": self.origin,
            "created_at": self.created_at.isoformat(),
            "last_used_at": _iso(self.last_used_at),
        }


@dataclass(frozen=True)
class ConnectionInfo:
    """A connection as adapters show it: URL, state of the last attempt, key, index size."""

    id: str
    project: str
    url: str
    state: str
    error_code: str | None
    error_message: str | None
    error_hint: str | None
    attempted_at: datetime | None
    fetched_at: datetime | None
    created_at: datetime
    deploy_key: DeployKeyInfo
    commits: int
    refs: int
    error_reason: str | None = None
    error_context: Mapping[str, str] = field(default_factory=dict)
    """The last error's precise reason and context, for an adapter that words its fix."""
    registered_api_root: str | None = None
    """The host API the deploy key was registered on as an access key; none: added by hand."""
    poll_interval_minutes: int | None = None
    """A fetch every so many minutes, for hosts that cannot send webhooks; none: no polling."""

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "project": self.project,
            "url": self.url,
            "state": self.state,
            "error": (
                {"code": self.error_code, "message": self.error_message, "hint": self.error_hint}
                if self.error_code
                else None
            ),
            "attempted_at": _iso(self.attempted_at),
            "fetched_at": _iso(self.fetched_at),
            "created_at": self.created_at.isoformat(),
            "deploy_key": self.deploy_key.as_dict(),
            "commits": self.commits,
            "refs": self.refs,
            "registered_on": self.registered_api_root,
            "poll_interval_minutes": self.poll_interval_minutes,
        }


def parse_connection_url(text: str) -> SSHURL:
    """The URL through :mod:`repolink.urls`; every refusal becomes ``invalid_url``."""
    try:
        return parse_ssh_url(text)
    except URLError as exc:
        raise invalid_url(exc) from None


def import_private_key(data: str | bytes, passphrase: str | bytes | None = None) -> PrivateKey:
    """A private key in any format :mod:`repolink.keys` reads; refusals become
    ``invalid_private_key`` (with the precise reason and its fix kept)."""
    try:
        return parse_private_key(data, passphrase).key
    except KeyFormatError as exc:
        raise invalid_private_key(exc) from None


def get_connection(session: Session, project: str) -> RepositoryConnection:
    """The connection of ``project``, or ``connection_not_found``."""
    row = get_project(session, project)
    connection = session.scalar(
        select(RepositoryConnection).where(RepositoryConnection.project_id == row.id)
    )
    if connection is None:
        raise NotFound(
            "connection_not_found",
            f"project {row.slug!r} has no repository connection",
            "connect the project to a repository first",
            context={"project": row.slug},
        )
    return connection


def create_connection(
    session: Session,
    vault: Vault,
    project: str,
    url: SSHURL,
    key: PrivateKey | KeyRecord,
    *,
    origin: str,
    url_origin: str | None = None,
    now: datetime | None = None,
) -> ConnectionInfo:
    """Store the deploy key (encrypted; a :class:`KeyRecord` is stored already — a prepared
    key) and the connection, state ``unknown``.

    ``url_origin``: who gave the URL (``URL_FROM_CLIENT…``; none: the operator)."""
    row = get_project(session, project)
    existing = session.scalar(
        select(RepositoryConnection.id).where(RepositoryConnection.project_id == row.id)
    )
    if existing is not None:
        raise Conflict(
            "connection_exists",
            f"project {row.slug!r} is connected to a repository already",
            "disconnect the project first",
            context={"project": row.slug},
        )
    label = f"deploy key of project {row.slug}"
    if isinstance(key, KeyRecord):
        record = key
        record.label = label
    else:
        record = store_private_key(session, vault, key, label=label)
    connection = RepositoryConnection(
        id=new_id(),
        project_id=row.id,
        url=url.original or url.git_url,
        deploy_key_id=record.id,
        key_origin=origin,
        url_origin=url_origin,
        state=STATE_UNKNOWN,
        created_at=now or utcnow(),
    )
    session.add(connection)
    session.flush()
    log.info(
        "connected project %s to %s with %s deploy key %s",
        row.slug,
        url.canonical,
        origin,
        record.fingerprint_sha256,
    )
    return _info(session, connection, row.slug, record)


def load_connection_info(session: Session, project: str) -> ConnectionInfo:
    """What :meth:`ConnectionService.connection_info` answers, inside a caller's transaction."""
    connection = get_connection(session, project)
    record = get_key_record(session, connection.deploy_key_id)
    return _info(session, connection, project, record)


def record_success(
    session: Session, connection_id: str, *, attempted_at: datetime, finished_at: datetime
) -> None:
    session.flush()  # the statement below runs beside the ORM: nothing of it may be pending
    record_fetch_success(
        CoreReader(session.connection()),
        connection_id,
        attempted_at=attempted_at,
        finished_at=finished_at,
    )


def record_registration(session: Session, connection_id: str, api_root: str) -> None:
    session.execute(
        update(RepositoryConnection)
        .where(RepositoryConnection.id == connection_id)
        .values(registered_api_root=api_root)
    )


def record_failure(
    session: Session,
    connection_id: str,
    *,
    attempted_at: datetime,
    error: RepolinkError,
) -> None:
    connection = session.get(RepositoryConnection, connection_id)
    if connection is None:
        return
    connection.state = STATE_FAILED
    connection.error_code = error.code
    connection.error_message = error.message
    connection.error_hint = error.hint
    connection.error_reason = error.reason
    connection.error_context = dict(error.context) or None
    connection.attempted_at = attempted_at
    session.flush()


def _info(
    session: Session, connection: RepositoryConnection, project: str, record: KeyRecord
) -> ConnectionInfo:
    commits = session.scalar(
        select(func.count()).select_from(Commit).where(Commit.connection_id == connection.id)
    )
    refs = session.scalar(
        select(func.count()).select_from(Ref).where(Ref.connection_id == connection.id)
    )
    return ConnectionInfo(
        id=connection.id,
        project=project,
        url=connection.url,
        state=STATE_FETCHING if _fetching(session, connection.id) else connection.state,
        error_code=connection.error_code,
        error_message=connection.error_message,
        error_hint=connection.error_hint,
        error_reason=connection.error_reason,
        error_context=dict(connection.error_context or {}),
        registered_api_root=connection.registered_api_root,
        poll_interval_minutes=connection.poll_interval_minutes,
        attempted_at=connection.attempted_at,
        fetched_at=connection.fetched_at,
        created_at=connection.created_at,
        deploy_key=DeployKeyInfo.of(record, connection.key_origin),
        commits=int(commits or 0),
        refs=int(refs or 0),
    )


def _fetching(session: Session, connection_id: str) -> bool:
    """Whether a fetch run of the connection is running now (under a live lease: a dead
    worker's run does not count)."""
    running = session.scalar(
        select(FetchRun.id).where(
            FetchRun.connection_id == connection_id,
            FetchRun.status == RUN_RUNNING,
            FetchRun.claimed_until > utcnow(),
        )
    )
    return running is not None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
