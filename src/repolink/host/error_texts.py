"""The host service's errors, one constructor each, so each reads the same everywhere.

Messages name what was refused by the names the caller gave (already validated, so never key
material); hints name what to change, never a command.
"""

from __future__ import annotations

from repolink.errors import Conflict, DuplicateKey, GitError, NotFound, PermissionDenied
from repolink.host.naming import RepositoryName


def repository_exists(name: RepositoryName) -> Conflict:
    return Conflict(
        "repository_exists",
        f"the repository {name.full_name} exists already",
        "choose another slug, or delete the existing repository first",
    )


def repository_not_granted(name: RepositoryName) -> NotFound:
    # One text for "missing" and "not yours": the answer must not reveal which.
    return NotFound(
        "repository_not_found",
        f"repository {name.full_name} not found",
        "check the path, and that your key was added to this repository as an access key "
        "(or to its workspace as an account key)",
    )


def workspace_not_found(workspace: str) -> NotFound:
    return NotFound(
        "workspace_not_found",
        f"there is no workspace {workspace}",
        "a workspace is created with its first repository",
        context={"workspace": workspace},
    )


def access_key_duplicate(existing_id: int | None) -> DuplicateKey:
    which = f" (access key {existing_id})" if existing_id is not None else ""
    return DuplicateKey(
        "access_key_duplicate",
        f"this key is already an access key of this repository{which}",
        "nothing to do; to change its label or permission, update that access key instead",
    )


def account_key_duplicate(existing_id: int | None) -> DuplicateKey:
    which = f" (account key {existing_id})" if existing_id is not None else ""
    return DuplicateKey(
        "account_key_duplicate",
        f"this key is already an account key of this workspace{which}",
        "nothing to do; remove that account key first to replace it",
    )


def account_key_not_found(workspace: str, key_id: int | str) -> NotFound:
    """``key_id``: the id or fingerprint the key was named by (parsed, so never key material)."""
    return NotFound(
        "account_key_not_found",
        f"the workspace {workspace} has no account key {key_id}",
        "list its account keys to find the id or fingerprint",
        context={"workspace": workspace, "key_id": str(key_id)},
    )


def access_key_not_found(repository: str, key_id: int | str) -> NotFound:
    """``key_id``: the id or fingerprint the key was named by (parsed, so never key material)."""
    return NotFound(
        "access_key_not_found",
        f"the repository {repository} has no access key {key_id}",
        "list its access keys to find the id or fingerprint",
        context={"repository": repository, "key_id": str(key_id)},
    )


# What one peer may hold of the host: the limits' names are the operator's settings, since
# only the operator can change them.


def too_many_sessions(limit: int) -> PermissionDenied:
    return PermissionDenied(
        "too_many_sessions",
        f"this connection has {limit} sessions open, as many as the host allows",
        "wait for a session to end or open another connection; the host's operator sets the "
        "limit (REPOLINK_SSH_MAX_SESSIONS)",
        context={"limit": str(limit)},
    )


def too_many_processes(limit: int) -> PermissionDenied:
    return PermissionDenied(
        "too_many_processes",
        f"this key runs {limit} git commands already, as many as the host allows",
        "wait for one to end; the host's operator sets the limit "
        "(REPOLINK_SSH_MAX_PROCESSES_PER_KEY)",
        context={"limit": str(limit)},
    )


def service_idle(seconds: float) -> GitError:
    return GitError(
        "service_idle",
        f"the git command was stopped: no data moved for {seconds:g} seconds",
        "run the command again; the host's operator sets the limit (REPOLINK_SSH_IDLE_TIMEOUT)",
        context={"seconds": f"{seconds:g}"},
    )
