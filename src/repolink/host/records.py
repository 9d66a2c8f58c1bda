"""Database rows of the built-in host → the plain records its services hand out.

Only the host's services call these, inside their own transactions; nothing outside ``host/``
ever sees a row.
"""

from __future__ import annotations

import uuid

from repolink.host.info import AccessKeyInfo, AccountKeyInfo, RepositoryInfo, WorkspaceInfo
from repolink.keys import PublicKey
from repolink.store import utcnow
from repolink.store.models.host import AccessKey, AccountKey, HostedRepository, Workspace

# Workspaces have integer ids; their uuid (Bitbucket names every object by one) is derived
# from the id and the name, which never change, so it is stable without a column of its own.
_WORKSPACE_UUIDS = uuid.UUID("6f1f2c1e-3b1a-5c7e-9a51-0c3f4b8e2d17")


def full_name(space: Workspace, repo: HostedRepository) -> str:
    return f"{space.name}/{repo.slug}"


def workspace_uuid(row: Workspace) -> str:
    return str(uuid.uuid5(_WORKSPACE_UUIDS, f"{row.id}:{row.name}"))


def workspace_info(row: Workspace) -> WorkspaceInfo:
    return WorkspaceInfo(
        id=row.id, name=row.name, uuid=workspace_uuid(row), created_on=row.created_on
    )


def repository_info(row: HostedRepository, space: Workspace) -> RepositoryInfo:
    name = full_name(space, row)
    return RepositoryInfo(
        id=row.id,
        workspace=space.name,
        workspace_uuid=workspace_uuid(space),
        slug=row.slug,
        full_name=name,
        created_on=row.created_on,
        ssh_clone_path=f"{name}.git",
        description=row.description,
    )


def key_fields(key: PublicKey, label: str) -> dict[str, object]:
    """The columns an account or access key row takes from the parsed key."""
    return {
        "label": label,
        "key_type": key.key_type,
        "public_key": key.openssh_line(with_comment=False),
        "comment": key.comment,
        "fingerprint_sha256": key.sha256_fingerprint,
        "fingerprint_md5": key.md5_fingerprint,
        "added_on": utcnow(),
    }


def access_key_info(row: AccessKey, repository_full_name: str) -> AccessKeyInfo:
    return AccessKeyInfo(
        id=row.id,
        repository_full_name=repository_full_name,
        label=row.label,
        key=row.public_key,
        comment=row.comment,
        key_type=row.key_type,
        fingerprint_sha256=row.fingerprint_sha256,
        fingerprint_md5=row.fingerprint_md5,
        read_only=not row.writable,
        added_on=row.added_on,
        last_used=row.last_used,
    )


def account_key_info(row: AccountKey, space: Workspace) -> AccountKeyInfo:
    return AccountKeyInfo(
        id=row.id,
        workspace=space.name,
        label=row.label,
        key=row.public_key,
        comment=row.comment,
        key_type=row.key_type,
        fingerprint_sha256=row.fingerprint_sha256,
        fingerprint_md5=row.fingerprint_md5,
        added_on=row.added_on,
        last_used=row.last_used,
    )
