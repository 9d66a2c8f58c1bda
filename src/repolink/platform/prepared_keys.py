"""Prepared deploy keys: a deploy key generated before the project's connection is saved.

The Valohai article's order is generate the key → add its public half to the repository as a
read-only access key → paste the SSH URL → save → fetch. So a project may hold one generated
key before it has a connection (``prepared_deploy_keys``,
:mod:`repolink.store.models.prepared_keys`); saving a connection without a key of its own then
uses it (:meth:`repolink.platform.connect.ConnectionService.save`), and the first fetch can
succeed at once. The functions here work inside the caller's transaction; the service methods
are :meth:`~repolink.platform.connect.ConnectionService.prepare_key` and
:meth:`~repolink.platform.connect.ConnectionService.prepared_key`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from repolink.keys import PrivateKey
from repolink.platform.connections import DeployKeyInfo
from repolink.store.key_records import store_private_key
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import KEY_GENERATED, Project
from repolink.store.models.prepared_keys import PreparedDeployKey
from repolink.vault import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedKey:
    """A project's prepared deploy key: its public facts, and — in the one answer that
    generated it, for a download — its private half."""

    project: str
    key: DeployKeyInfo
    private_key: PrivateKey | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, object]:
        return {"project": self.project, "deploy_key": self.key.as_dict()}


def store_prepared(
    session: Session, vault: Vault, project: Project, key: PrivateKey
) -> PreparedKey:
    """Store ``key`` as ``project``'s prepared deploy key, replacing (and deleting) the one it
    had."""
    discard_prepared(session, project.id)
    record = store_private_key(
        session, vault, key, label=f"deploy key of project {project.slug} (prepared)"
    )
    session.add(PreparedDeployKey(project_id=project.id, key_record_id=record.id))
    session.flush()
    log.info("prepared deploy key %s for project %s", record.fingerprint_sha256, project.slug)
    return PreparedKey(project.slug, DeployKeyInfo.of(record, KEY_GENERATED), private_key=key)


def load_prepared(session: Session, project: Project) -> PreparedKey | None:
    """``project``'s prepared deploy key, or ``None``."""
    record = _prepared_record(session, project.id)
    if record is None:
        return None
    return PreparedKey(project.slug, DeployKeyInfo.of(record, KEY_GENERATED))


def take_prepared(session: Session, project_id: str) -> KeyRecord | None:
    """The key record of the project's prepared deploy key, no longer prepared (a connection
    is about to own it); ``None`` when it has none."""
    record = _prepared_record(session, project_id)
    if record is not None:
        session.execute(delete(PreparedDeployKey).where(PreparedDeployKey.project_id == project_id))
    return record


def discard_prepared(session: Session, project_id: str) -> None:
    """Delete the project's prepared deploy key and its key record, if it has one."""
    record = take_prepared(session, project_id)
    if record is not None:
        session.delete(record)
        session.flush()


def prepared_record_ids(session: Session, project_id: str) -> list[str]:
    """The key record of the project's prepared key, if any: what deleting the project must
    delete too."""
    return list(
        session.scalars(
            select(PreparedDeployKey.key_record_id).where(
                PreparedDeployKey.project_id == project_id
            )
        )
    )


def _prepared_record(session: Session, project_id: str) -> KeyRecord | None:
    return session.scalar(
        select(KeyRecord)
        .join(PreparedDeployKey, PreparedDeployKey.key_record_id == KeyRecord.id)
        .where(PreparedDeployKey.project_id == project_id)
    )
