"""The built-in host's service layer: repositories, account and access keys, authorization.

Every adapter (CLI, HTTP API, SSH server, OpenSSH mode) calls this class and holds no logic of
its own. Nothing is cached: each call reads the database, so a key removed by one process is
refused by every other on its next connection or command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repolink.errors import Conflict, NotFound, PermissionDenied, ValidationError
from repolink.git.runner import GitRunner
from repolink.host.commands import Verb
from repolink.host.error_texts import (
    access_key_duplicate,
    access_key_not_found,
    account_key_duplicate,
    account_key_not_found,
    repository_exists,
    repository_not_granted,
    workspace_not_found,
)
from repolink.host.info import (
    AccessKeyInfo,
    AccountKeyInfo,
    Grant,
    KeyHandle,
    RepositoryInfo,
    WorkspaceInfo,
)
from repolink.host.key_refs import find_access_key, find_account_key, parse_key_ref
from repolink.host.naming import (
    RepositoryName,
    parse_repository_path,
    validate_description,
    validate_slug,
    validate_workspace,
)
from repolink.host.records import (
    access_key_info,
    account_key_info,
    full_name,
    key_fields,
    repository_info,
    workspace_info,
)
from repolink.host.repo_storage import RepositoryStorage
from repolink.keys import PublicKey, parse_public_key
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models.host import AccessKey, AccountKey, HostedRepository, Workspace

__all__ = [
    "AccessKeyInfo",
    "AccountKeyInfo",
    "Grant",
    "HostService",
    "KeyHandle",
    "RepositoryInfo",
    "WorkspaceInfo",
]

log = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_LABEL_LENGTH = 200
# How often one creation is run when its new workspace is inserted by another at once.
WORKSPACE_ATTEMPTS = 3
_T = TypeVar("_T")


class HostService:
    """Hosted repositories and the keys that may reach them."""

    def __init__(self, settings: Settings, store: Store, *, runner: GitRunner) -> None:
        self._settings = settings
        self._store = store
        self._storage = RepositoryStorage(settings, runner=runner)

    # -- repositories -------------------------------------------------------------------

    def create_repository(
        self, workspace: str, slug: str, *, description: str = ""
    ) -> RepositoryInfo:
        """A new, empty bare repository; its workspace is created when it does not exist."""
        name = RepositoryName(validate_workspace(workspace), validate_slug(slug))
        description = validate_description(description)
        info = _retry_on_workspace_race(
            name.workspace, lambda: self._create_repository(name, description)
        )
        log.info("created repository %s (id %s)", info.full_name, info.id)
        return info

    def _create_repository(self, name: RepositoryName, description: str) -> RepositoryInfo:
        created: str | None = None
        try:
            with self._store.session() as session:
                space = self._workspace_row(session, name.workspace, create=True)
                if self._repository_row(session, space, name.slug) is not None:
                    raise repository_exists(name)
                row = HostedRepository(
                    workspace_id=space.id,
                    slug=name.slug,
                    created_on=utcnow(),
                    description=description,
                )
                session.add(row)
                try:
                    session.flush()
                except IntegrityError:
                    raise repository_exists(name) from None
                # Inside the transaction: a failed `git init` leaves no row behind.
                self._storage.create(row.id)
                created = row.id
                return repository_info(row, space)
        except BaseException:
            if created is not None:  # the commit failed: no row, so no directory either
                self._storage.delete(created)
            raise

    def list_repositories(self, workspace: str) -> list[RepositoryInfo]:
        with self._store.session() as session:
            space = self._existing_workspace(session, workspace)
            rows = session.scalars(
                select(HostedRepository)
                .where(HostedRepository.workspace_id == space.id)
                .order_by(HostedRepository.slug)
            )
            return [repository_info(row, space) for row in rows]

    def list_all_repositories(self) -> list[RepositoryInfo]:
        """Every repository of every workspace, by workspace name, then slug."""
        with self._store.session() as session:
            rows = session.execute(
                select(HostedRepository, Workspace)
                .join(Workspace, HostedRepository.workspace_id == Workspace.id)
                .order_by(Workspace.name, HostedRepository.slug)
            )
            return [repository_info(repo, space) for repo, space in rows]

    def get_repository(self, workspace: str, slug: str) -> RepositoryInfo:
        with self._store.session() as session:
            row, space = self._existing_repository(session, workspace, slug)
            return repository_info(row, space)

    def update_repository(
        self, workspace: str, slug: str, *, description: str | None = None
    ) -> RepositoryInfo:
        """Change what may change of a repository: its description (``None``: kept)."""
        checked = None if description is None else validate_description(description)
        with self._store.session() as session:
            row, space = self._existing_repository(session, workspace, slug)
            if checked is not None:
                row.description = checked
            return repository_info(row, space)

    def put_repository(
        self, workspace: str, slug: str, *, description: str | None = None
    ) -> tuple[RepositoryInfo, bool]:
        """Update the repository, or create it when missing (Bitbucket's PUT): its record, and
        whether it was created. Losing a race to create it makes this an update."""
        try:
            return self.update_repository(workspace, slug, description=description), False
        except NotFound as missing:
            if missing.code != "repository_not_found":
                raise
        try:
            return self.create_repository(workspace, slug, description=description or ""), True
        except Conflict as exists:
            if exists.code != "repository_exists":
                raise
        return self.update_repository(workspace, slug, description=description), False

    def delete_repository(self, workspace: str, slug: str) -> None:
        """Remove the repository, its access keys (and hooks, by cascade) and its files."""
        with self._store.session() as session:
            row, space = self._existing_repository(session, workspace, slug)
            repository_id = row.id
            session.execute(delete(HostedRepository).where(HostedRepository.id == repository_id))
        self._storage.delete(repository_id)
        log.info("deleted repository %s/%s (id %s)", space.name, slug, repository_id)

    def repository_path(self, info: RepositoryInfo) -> Path:
        """The bare repository's directory on disk (derived from the id alone)."""
        return self._storage.path_for(info.id)

    def main_branch(self, info: RepositoryInfo) -> str | None:
        """The branch the repository's HEAD names, once that branch exists (a new repository
        has none until its first push); read from its files, no process started."""
        return self._storage.main_branch(info.id)

    def last_push(self, info: RepositoryInfo) -> datetime | None:
        """When a push last changed the repository's refs, read from its files; ``None``: never."""
        return self._storage.last_ref_change(info.id)

    def list_workspaces(self) -> list[str]:
        with self._store.session() as session:
            return list(session.scalars(select(Workspace.name).order_by(Workspace.name)))

    def workspaces(self) -> list[WorkspaceInfo]:
        """Every workspace, by name."""
        with self._store.session() as session:
            rows = session.scalars(select(Workspace).order_by(Workspace.name))
            return [workspace_info(row) for row in rows]

    def get_workspace(self, workspace: str) -> WorkspaceInfo:
        with self._store.session() as session:
            return workspace_info(self._existing_workspace(session, workspace))

    # -- access keys --------------------------------------------------------------------

    def add_access_key(
        self, workspace: str, slug: str, key_text: str, *, label: str, writable: bool = False
    ) -> AccessKeyInfo:
        """Add a public key to one repository; read-only unless ``writable``."""
        key = parse_public_key(key_text).key
        label = _validate_label(label)
        with self._store.session() as session:
            repo, space = self._existing_repository(session, workspace, slug)
            if self._account_key_exists(session, key.sha256_fingerprint):
                raise Conflict(
                    "key_is_account_key",
                    "this key is an account key, so it cannot also be an access key",
                    "generate a separate key pair for the machine and add that one",
                )
            duplicate = session.scalar(
                select(AccessKey.id).where(
                    AccessKey.repository_id == repo.id,
                    AccessKey.fingerprint_sha256 == key.sha256_fingerprint,
                )
            )
            if duplicate is not None:
                raise access_key_duplicate(duplicate)
            row = AccessKey(repository_id=repo.id, writable=writable, **key_fields(key, label))
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise access_key_duplicate(None) from None
            info = access_key_info(row, full_name(space, repo))
        log.info(
            "added access key %d %s to %s (%s)",
            info.id,
            info.fingerprint_sha256,
            info.repository_full_name,
            "read/write" if writable else "read-only",
        )
        return info

    def list_access_keys(self, workspace: str, slug: str) -> list[AccessKeyInfo]:
        with self._store.session() as session:
            repo, space = self._existing_repository(session, workspace, slug)
            rows = session.scalars(
                select(AccessKey).where(AccessKey.repository_id == repo.id).order_by(AccessKey.id)
            )
            return [access_key_info(row, full_name(space, repo)) for row in rows]

    def get_access_key(self, workspace: str, slug: str, key_id: int) -> AccessKeyInfo:
        with self._store.session() as session:
            repo, space = self._existing_repository(session, workspace, slug)
            row = self._existing_access_key(session, repo, space, key_id)
            return access_key_info(row, full_name(space, repo))

    def update_access_key(
        self,
        workspace: str,
        slug: str,
        key_id: int,
        *,
        label: str | None = None,
        writable: bool | None = None,
        key: str | None = None,
    ) -> AccessKeyInfo:
        """Change the label and/or write permission; the key itself never changes.

        ``key`` may be sent along (Bitbucket clients send the whole deploy key back); it must
        be the key already stored — a key is replaced by adding the new one and removing the
        old, so a machine is never left between two keys. Else ``deploy_key_immutable``.
        """
        with self._store.session() as session:
            repo, space = self._existing_repository(session, workspace, slug)
            row = self._existing_access_key(session, repo, space, key_id)
            if key is not None and _fingerprint(key) != row.fingerprint_sha256:
                raise ValidationError(
                    "deploy_key_immutable",
                    "the key of a deploy key cannot be changed",
                    "add the new key as another deploy key, then delete this one",
                )
            if label is not None:
                row.label = _validate_label(label)
            if writable is not None:
                row.writable = writable
            info = access_key_info(row, full_name(space, repo))
        log.info("updated access key %d on %s", key_id, info.repository_full_name)
        return info

    def remove_access_key(self, workspace: str, slug: str, key: int | str) -> AccessKeyInfo:
        """Remove the access key named by ``key``: its id, SHA256 or MD5 fingerprint."""
        ref = parse_key_ref(key)
        with self._store.session() as session:
            repo, space = self._existing_repository(session, workspace, slug)
            row = find_access_key(session, repo.id, ref)
            if row is None:
                raise access_key_not_found(full_name(space, repo), str(ref))
            info = access_key_info(row, full_name(space, repo))
            session.delete(row)
        log.info("removed access key %d from %s", info.id, info.repository_full_name)
        return info

    # -- account keys -------------------------------------------------------------------

    def add_account_key(self, workspace: str, key_text: str, *, label: str) -> AccountKeyInfo:
        """Add a person's key to a workspace (created when missing): read and push all of it."""
        key = parse_public_key(key_text).key
        label = _validate_label(label)
        name = validate_workspace(workspace)
        info = _retry_on_workspace_race(name, lambda: self._add_account_key(name, key, label))
        log.info("added account key %d %s to %s", info.id, info.fingerprint_sha256, name)
        return info

    def _add_account_key(self, name: str, key: PublicKey, label: str) -> AccountKeyInfo:
        with self._store.session() as session:
            if session.scalar(
                select(AccessKey.id).where(AccessKey.fingerprint_sha256 == key.sha256_fingerprint)
            ):
                raise Conflict(
                    "key_is_access_key",
                    "this key is an access key of a repository, so it cannot also be an "
                    "account key",
                    "use a personal key pair for the account, or remove the access key first",
                )
            space = self._workspace_row(session, name, create=True)
            duplicate = session.scalar(
                select(AccountKey.id).where(
                    AccountKey.workspace_id == space.id,
                    AccountKey.fingerprint_sha256 == key.sha256_fingerprint,
                )
            )
            if duplicate is not None:
                raise account_key_duplicate(duplicate)
            row = AccountKey(workspace_id=space.id, **key_fields(key, label))
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise account_key_duplicate(None) from None
            return account_key_info(row, space)

    def list_account_keys(self, workspace: str) -> list[AccountKeyInfo]:
        with self._store.session() as session:
            space = self._existing_workspace(session, workspace)
            rows = session.scalars(
                select(AccountKey)
                .where(AccountKey.workspace_id == space.id)
                .order_by(AccountKey.id)
            )
            return [account_key_info(row, space) for row in rows]

    def remove_account_key(self, workspace: str, key: int | str) -> AccountKeyInfo:
        """Remove the account key named by ``key``: its id, SHA256 or MD5 fingerprint."""
        ref = parse_key_ref(key)
        with self._store.session() as session:
            space = self._existing_workspace(session, workspace)
            row = find_account_key(session, space.id, ref)
            if row is None:
                raise account_key_not_found(space.name, str(ref))
            info = account_key_info(row, space)
            session.delete(row)
        log.info("removed account key %d from %s", info.id, space.name)
        return info

    # -- authorization ------------------------------------------------------------------

    def is_known_key(self, fingerprint_sha256: str) -> bool:
        """Whether any account or access key has this exact SHA256 fingerprint."""
        return self.find_key(fingerprint_sha256) is not None

    def find_key(self, fingerprint_sha256: str) -> KeyHandle | None:
        """One stored key with this fingerprint (the oldest), or ``None``."""
        with self._store.session() as session:
            account_id = session.scalar(
                select(AccountKey.id)
                .where(AccountKey.fingerprint_sha256 == fingerprint_sha256)
                .order_by(AccountKey.id)
                .limit(1)
            )
            if account_id is not None:
                return KeyHandle("account", account_id)
            access_id = session.scalar(
                select(AccessKey.id)
                .where(AccessKey.fingerprint_sha256 == fingerprint_sha256)
                .order_by(AccessKey.id)
                .limit(1)
            )
            return KeyHandle("access", access_id) if access_id is not None else None

    def key_fingerprint(self, handle: KeyHandle) -> str | None:
        """The fingerprint of the key ``handle`` names, ``None`` once it has been removed."""
        model: type[AccessKey] | type[AccountKey] = (
            AccountKey if handle.kind == "account" else AccessKey
        )
        with self._store.session() as session:
            return session.scalar(select(model.fingerprint_sha256).where(model.id == handle.id))

    def authorize(self, fingerprint_sha256: str, repo_path: str, verb: Verb) -> Grant:
        """What the key may do on the repository at ``repo_path`` for ``verb``.

        A repository the key has no grant on is reported exactly like a missing one
        (``repository_not_found``), so keys cannot probe which repositories exist. A read-only
        access key asking to write gets ``read_only_key``.
        """
        name = parse_repository_path(repo_path)
        if name is None:
            raise ValidationError(
                "repository_path_invalid",
                "a repository path looks like 'workspace/slug.git'",
                "clone with git clone git@HOST:WORKSPACE/SLUG.git",
            )
        with self._store.session() as session:
            found = self._find_repository(session, name.workspace, name.slug)
            if found is None:
                raise repository_not_granted(name)
            repo, space = found
            info = repository_info(repo, space)
            account_id = session.scalar(
                select(AccountKey.id).where(
                    AccountKey.workspace_id == space.id,
                    AccountKey.fingerprint_sha256 == fingerprint_sha256,
                )
            )
            if account_id is not None:
                return Grant(info, "account", account_id, writable=True)
            access = session.execute(
                select(AccessKey.id, AccessKey.writable).where(
                    AccessKey.repository_id == repo.id,
                    AccessKey.fingerprint_sha256 == fingerprint_sha256,
                )
            ).first()
            if access is None:
                raise repository_not_granted(name)
            grant = Grant(info, "access", access.id, writable=access.writable)
        if verb == "write" and not grant.writable:
            raise PermissionDenied(
                "read_only_key",
                "this access key is read-only",
                f"ask an admin of {info.full_name} to make access key {grant.key_id} writable",
                context={"repository": info.full_name, "key_id": str(grant.key_id)},
            )
        return grant

    def mark_key_used(self, grant: Grant) -> None:
        """Record that the granted key was used now; written at most once a minute per key."""
        model: type[AccessKey] | type[AccountKey] = (
            AccountKey if grant.key_kind == "account" else AccessKey
        )
        now = utcnow()
        stale = now - LAST_USED_RESOLUTION
        with self._store.session() as session:
            # Read first: most uses are within the minute, and a read takes no write lock
            # (many parallel clones of one key must not queue for SQLite's writer).
            last_used = session.scalar(select(model.last_used).where(model.id == grant.key_id))
            if last_used is not None and last_used >= stale:
                return
            # A conditional UPDATE, so concurrent connections of one key write at most once.
            session.execute(
                update(model)
                .where(
                    model.id == grant.key_id,
                    or_(model.last_used.is_(None), model.last_used < stale),
                )
                .values(last_used=now)
            )

    # -- rows ---------------------------------------------------------------------------

    def _workspace_row(self, session: Session, name: str, *, create: bool) -> Workspace:
        row = session.scalar(select(Workspace).where(Workspace.name == name))
        if row is None:
            if not create:
                raise workspace_not_found(name)
            row = Workspace(name=name, created_on=utcnow())
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                # A concurrent unit of work inserted it first; this one is rolled back and
                # run again by `_retry_on_workspace_race`, and then finds that row.
                raise _WorkspaceRace from None
        return row

    def _existing_workspace(self, session: Session, workspace: str) -> Workspace:
        return self._workspace_row(session, validate_workspace(workspace), create=False)

    def _repository_row(
        self, session: Session, space: Workspace, slug: str
    ) -> HostedRepository | None:
        return session.scalar(
            select(HostedRepository).where(
                HostedRepository.workspace_id == space.id, HostedRepository.slug == slug
            )
        )

    def _find_repository(
        self, session: Session, workspace: str, slug: str
    ) -> tuple[HostedRepository, Workspace] | None:
        space = session.scalar(select(Workspace).where(Workspace.name == workspace))
        if space is None:
            return None
        repo = self._repository_row(session, space, slug)
        return (repo, space) if repo is not None else None

    def _existing_repository(
        self, session: Session, workspace: str, slug: str
    ) -> tuple[HostedRepository, Workspace]:
        name = RepositoryName(validate_workspace(workspace), validate_slug(slug))
        found = self._find_repository(session, name.workspace, name.slug)
        if found is None:
            raise NotFound(
                "repository_not_found",
                f"there is no repository {name.full_name}",
                f"check the name against the repositories of workspace {name.workspace}",
                context={"workspace": name.workspace},
            )
        return found

    def _existing_access_key(
        self, session: Session, repo: HostedRepository, space: Workspace, key_id: int
    ) -> AccessKey:
        row = session.get(AccessKey, key_id)
        if row is None or row.repository_id != repo.id:
            raise access_key_not_found(full_name(space, repo), key_id)
        return row

    def _account_key_exists(self, session: Session, fingerprint: str) -> bool:
        return (
            session.scalar(
                select(AccountKey.id).where(AccountKey.fingerprint_sha256 == fingerprint).limit(1)
            )
            is not None
        )


# -- conversions and errors ---------------------------------------------------------------


class _WorkspaceRace(Exception):
    """Another transaction inserted the same new workspace first."""


def _retry_on_workspace_race(workspace: str, work: Callable[[], _T]) -> _T:
    """Run ``work`` again while a concurrent creation of its workspace wins the insert.

    Insert-or-get by redoing the whole unit of work (the failed flush rolled it back) rather
    than by a savepoint, which the sqlite3 driver handles badly. The next run finds the
    winner's row; it can race again only if the winner rolled back, hence the bound.
    """
    for _ in range(WORKSPACE_ATTEMPTS - 1):
        try:
            return work()
        except _WorkspaceRace:
            log.debug("workspace %s was created concurrently; running again", workspace)
    try:
        return work()
    except _WorkspaceRace:
        raise Conflict(
            "workspace_busy",
            f"the workspace {workspace} is being created by another request",
            "retry in a moment",
        ) from None


def _fingerprint(key_text: str) -> str:
    return parse_public_key(key_text).key.sha256_fingerprint


def _validate_label(label: str) -> str:
    label = label.strip()
    if not label or len(label) > MAX_LABEL_LENGTH or not label.isprintable():
        raise ValidationError(
            "label_invalid",
            f"a key label is 1–{MAX_LABEL_LENGTH} printable characters",
            "name the machine or purpose, e.g. 'ci runner'",
        )
    return label
