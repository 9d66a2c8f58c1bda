"""What the host service hands out: plain frozen records, never database rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

KeyKind = Literal["account", "access"]


@dataclass(frozen=True)
class WorkspaceInfo:
    id: int
    name: str
    uuid: str
    """Stable for the workspace's life, derived from its id and name (no column of its own)."""
    created_on: datetime


@dataclass(frozen=True)
class RepositoryInfo:
    id: str
    workspace: str
    workspace_uuid: str
    slug: str
    full_name: str
    created_on: datetime
    ssh_clone_path: str
    description: str


@dataclass(frozen=True)
class AccessKeyInfo:
    id: int
    repository_full_name: str
    label: str
    key: str
    """The public key as an OpenSSH line without its comment (``ssh-ed25519 AAAA…``)."""
    comment: str
    key_type: str
    fingerprint_sha256: str
    fingerprint_md5: str
    read_only: bool
    added_on: datetime
    last_used: datetime | None


@dataclass(frozen=True)
class AccountKeyInfo:
    id: int
    workspace: str
    label: str
    key: str
    comment: str
    key_type: str
    fingerprint_sha256: str
    fingerprint_md5: str
    added_on: datetime
    last_used: datetime | None


@dataclass(frozen=True)
class KeyHandle:
    """Which stored key a fingerprint belongs to (OpenSSH mode names keys this way)."""

    kind: KeyKind
    id: int

    @property
    def token(self) -> str:
        return f"key-{self.kind}-{self.id}"


@dataclass(frozen=True)
class Grant:
    """What one key may do on one repository, decided for one command."""

    repository: RepositoryInfo
    key_kind: KeyKind
    key_id: int
    writable: bool
