"""Checkout keys: the keys a project's repository is checked out with, as CircleCI names them
(issue 11 §5).

A project's checkout keys are

- its **deploy key** (``deploy-key``): the connection's deploy key, and — while a key rotation
  (:mod:`repolink.platform.rotation`) is pending — the new key waiting to be proven;
- its **user keys** (``user-key``; CircleCI's v1.1 API calls them ``github-user-key``): key
  pairs the project holds on behalf of one of its users, at most one per user
  (:mod:`repolink.store.models.user_keys`). On a forge such a key is added to the user's
  account rather than to the repository.

**Preferred** is the one key fetches use: the newest user key, else the deploy key — a user
key is preferred over the deploy key, CircleCI's rule. :mod:`repolink.platform.fetch`, the
doctor and :func:`repolink.platform.key_rules.choose_key` (for a URL no key rule or additional
key serves) all take it from :func:`repolink.store.models.user_keys.preferred_key_id`.

Creating and deleting a deploy key map onto a key rotation, so there is never a moment without
a working deploy key:

- *create* ``deploy-key`` starts a rotation: the new key is listed (not preferred) beside the
  current one until the rotation completes; a second create while one is pending is refused
  (``rotation_pending``);
- *delete* the pending key aborts the rotation; *delete* the current deploy key while a new
  one is pending completes the rotation — a fetch with the new key proves it first, and when
  that fails its diagnosis is raised and nothing changes; *delete* the current deploy key with
  nothing pending is refused (``deploy_key_required``): a connection always has one.

Keys are named by fingerprint: MD5 (``aa:bb:…``, with or without ``MD5:``) or SHA256
(``SHA256:…``). Who may do what is the adapter's to check (reading: viewer; a deploy key:
admin; a user key: its own user, member or above); :meth:`CheckoutKeyService.delete_key` is
told whether the caller is a project admin and who the caller is, since a member may delete
only their own user key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repolink.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    URLError,
    ValidationError,
    quotable,
)
from repolink.keys import generate_key
from repolink.platform.additional_keys import KeyFingerprint, parse_key_fingerprint
from repolink.platform.key_rules import url_segments
from repolink.platform.projects import get_project
from repolink.platform.rotation import DeployKeyService
from repolink.store import Store
from repolink.store.key_records import store_private_key
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import Project, RepositoryConnection, new_id
from repolink.store.models.rotation import ROTATION_PENDING, KeyRotation
from repolink.store.models.user_keys import UserKey, newest_user_key
from repolink.store.types import Clock, utcnow
from repolink.urls import parse_ssh_url
from repolink.vault import Vault

log = logging.getLogger(__name__)

DEPLOY_KEY = "deploy-key"
USER_KEY = "user-key"
CHECKOUT_KEY_TYPES = (DEPLOY_KEY, USER_KEY)

# The ``vcs`` part of a CircleCI project slug (``gh/org/repo``) repolink understands.
VCS_SLUGS = frozenset({"gh", "github", "bb", "bitbucket", "gl", "gitlab"})
_SLUG_EXAMPLE = "gh/ORG/REPO"


@dataclass(frozen=True)
class CheckoutKeyInfo:
    """One checkout key's public facts; its private half is never part of any answer.

    ``pending``: a deploy key waiting for its rotation to complete. ``owner_user_id``: the user
    a user key belongs to (``None`` for a deploy key).
    """

    project: str
    kind: str
    key_record_id: str
    key_type: str
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    preferred: bool
    pending: bool
    owner_user_id: int | None
    created_at: datetime
    last_used_at: datetime | None

    @property
    def md5_hex(self) -> str:
        """The MD5 fingerprint as CircleCI and GitHub show it: colon-hex, no ``MD5:``."""
        return self.fingerprint_md5.removeprefix("MD5:")

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "type": self.kind,
            "key_type": self.key_type,
            "public_key": self.public_key,
            "fingerprint_sha256": self.fingerprint_sha256,
            "fingerprint_md5": self.fingerprint_md5,
            "preferred": self.preferred,
            "pending": self.pending,
            "owner_user_id": self.owner_user_id,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


class CheckoutKeyService:
    """A project's checkout keys: resolve a CircleCI project slug, list, find, create, delete.
    Each method is one transaction, except those that run a key rotation's steps."""

    def __init__(
        self,
        store: Store,
        vault: Callable[[], Vault],
        deploy_keys: DeployKeyService,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._vault = vault
        self._deploy_keys = deploy_keys
        self._clock = clock

    def resolve_project(
        self, project_slug: str, *, visible: Callable[[str], bool] | None = None
    ) -> str:
        """The slug of the project a CircleCI project slug names.

        ``VCS/ORG/REPO`` (``VCS`` one of :data:`VCS_SLUGS`) names the project whose
        connection's repository path is ``ORG/REPO`` (compared without case and without a
        final ``.git``; a deeper path such as GitLab's ``group/sub/repo`` works too); a single
        segment is our own project slug. ``visible`` narrows the candidates to the projects the
        caller may see, so an invisible project neither matches nor makes a match ambiguous.
        Two visible projects on that path: ``project_slug_ambiguous``.
        """
        parts = project_slug.strip().strip("/").split("/")
        if len(parts) == 1:
            return parts[0]
        vcs, path = parts[0].lower(), parts[1:]
        if vcs not in VCS_SLUGS or len(path) < 2 or not all(path):
            raise ValidationError(
                "project_slug_invalid",
                "a project slug is VCS/ORG/REPO with VCS one of "
                + ", ".join(sorted(VCS_SLUGS))
                + ", or a project's own slug",
                f"name the project like {_SLUG_EXAMPLE}, or by its own slug",
                context={"example": _SLUG_EXAMPLE},
            )
        wanted = _canonical_path(path)
        with self._store.session() as session:
            rows = session.execute(
                select(Project.slug, RepositoryConnection.url).join(
                    RepositoryConnection, RepositoryConnection.project_id == Project.id
                )
            ).all()
        matches = sorted(slug for slug, url in rows if _repository_path(url) == wanted)
        if visible is not None:
            matches = [slug for slug in matches if visible(slug)]
        shown = quotable("/".join(path))
        where = f" {shown}" if shown else ""
        if not matches:
            raise NotFound(
                "project_not_found",
                f"no project is connected to the repository{where}",
                "check the organisation and repository names, or name the project by its slug",
                context={"repository": shown} if shown else None,
            )
        if len(matches) > 1:
            raise Conflict(
                "project_slug_ambiguous",
                f"{len(matches)} projects are connected to the repository{where}: "
                + ", ".join(matches),
                "name the project by its own slug instead",
                context={"slugs": ", ".join(matches)},
            )
        return matches[0]

    def list_keys(self, project: str) -> list[CheckoutKeyInfo]:
        """The project's checkout keys: the preferred one first, then the newest first."""
        with self._store.session() as session:
            return _checkout_keys(session, get_project(session, project))

    def get_key(self, project: str, fingerprint: str) -> CheckoutKeyInfo:
        """The checkout key of ``project`` with this MD5 or SHA256 fingerprint, or
        ``checkout_key_not_found``."""
        wanted = _fingerprint(fingerprint)
        with self._store.session() as session:
            row = get_project(session, project)
            return _find(_checkout_keys(session, row), row.slug, wanted)

    def create_deploy_key(self, project: str) -> CheckoutKeyInfo:
        """A new ed25519 deploy key for ``project``'s connection: a key rotation starts, the
        new key pending until the rotation completes (see the module text)."""
        started = self._deploy_keys.start_rotation(project)
        new_key = started.rotation.new_key
        log.info(
            "project %s: new deploy key %s pending (checkout key)",
            started.rotation.project,
            new_key.fingerprint_sha256,
        )
        return self.get_key(project, new_key.fingerprint_sha256)

    def create_user_key(self, project: str, user_id: int) -> CheckoutKeyInfo:
        """A new ed25519 user key of ``project`` for user ``user_id``, who has none there yet
        (``user_key_exists``); it becomes the preferred checkout key."""
        with self._store.session() as session:
            row = get_project(session, project)  # a typo generates no key
            slug = row.slug
            _refuse_second_user_key(session, row, user_id)
        # Outside any transaction, like every key generation.
        key = generate_key("ed25519", None, f"repolink-{slug}-user")
        vault = self._vault()
        try:
            with self._store.session() as session:
                row = get_project(session, project)
                _refuse_second_user_key(session, row, user_id)
                record = store_private_key(
                    session, vault, key, label=f"user key of user {user_id} in project {row.slug}"
                )
                session.add(
                    UserKey(
                        id=new_id(),
                        project_id=row.id,
                        user_id=user_id,
                        key_record_id=record.id,
                        fingerprint_sha256=record.fingerprint_sha256,
                        created_at=self._clock(),
                    )
                )
                session.flush()
                fingerprint = record.fingerprint_sha256
        except IntegrityError:
            # Another request of the same user won the race between our check and the insert.
            raise _user_key_exists(slug) from None
        log.info("project %s: new user key %s of user %s", slug, fingerprint, user_id)
        return self.get_key(project, fingerprint)

    def delete_key(
        self,
        project: str,
        fingerprint: str,
        *,
        actor_user_id: int | None,
        project_admin: bool,
    ) -> CheckoutKeyInfo:
        """Delete a checkout key; answers the key as it was.

        A user key: by its own user or a project admin. A deploy key: by a project admin —
        the pending one aborts its rotation, the current one completes a pending rotation
        (proven by a fetch) and is refused with ``deploy_key_required`` when none is pending.
        """
        key = self.get_key(project, fingerprint)
        if key.kind == USER_KEY:
            if not project_admin and (actor_user_id is None or key.owner_user_id != actor_user_id):
                raise _admin_required(key.project, "deleting another user's user key")
            with self._store.session() as session:
                session.execute(delete(UserKey).where(UserKey.key_record_id == key.key_record_id))
                session.execute(delete(KeyRecord).where(KeyRecord.id == key.key_record_id))
            log.info("project %s: deleted user key %s", key.project, key.fingerprint_sha256)
            return key
        if not project_admin:
            raise _admin_required(key.project, "deleting a deploy key")
        if key.pending:
            self._deploy_keys.abort_rotation(key.project)
            return key
        if self._deploy_keys.pending_rotation(key.project) is None:
            raise Conflict(
                "deploy_key_required",
                f"{key.fingerprint_sha256} is the deploy key of project {key.project}, and a "
                "connection always has one",
                "create a new deploy key and add it to the repository first; deleting this one "
                "then switches to the new key, or remove the repository connection",
                context={"project": key.project, "fingerprint": key.fingerprint_sha256},
            )
        completed = self._deploy_keys.complete_rotation(key.project)
        log.info(
            "project %s: deploy key %s replaced by %s (checkout key deleted)",
            key.project,
            key.fingerprint_sha256,
            completed.deploy_key.fingerprint_sha256,
        )
        return key


# -- reading keys, in the caller's transaction --------------------------------------------------


def _checkout_keys(session: Session, project: Project) -> list[CheckoutKeyInfo]:
    user_rows = session.execute(
        select(UserKey, KeyRecord)
        .join(KeyRecord, KeyRecord.id == UserKey.key_record_id)
        .where(UserKey.project_id == project.id)
    ).all()
    newest = newest_user_key(session, project.id)
    keys = [
        _info(
            project.slug,
            USER_KEY,
            record,
            preferred=newest is not None and user_key.id == newest.id,
            owner=user_key.user_id,
        )
        for user_key, record in user_rows
    ]
    connection = session.scalar(
        select(RepositoryConnection).where(RepositoryConnection.project_id == project.id)
    )
    if connection is not None:
        deploy = session.get(KeyRecord, connection.deploy_key_id)
        if deploy is not None:
            keys.append(_info(project.slug, DEPLOY_KEY, deploy, preferred=newest is None))
        pending_id = session.scalar(
            select(KeyRotation.new_key_id).where(
                KeyRotation.connection_id == connection.id,
                KeyRotation.state == ROTATION_PENDING,
            )
        )
        pending = session.get(KeyRecord, pending_id) if pending_id is not None else None
        if pending is not None:
            keys.append(_info(project.slug, DEPLOY_KEY, pending, preferred=False, pending=True))
    keys.sort(key=lambda key: (key.created_at, key.key_record_id), reverse=True)
    keys.sort(key=lambda key: not key.preferred)
    return keys


def _info(
    slug: str,
    kind: str,
    record: KeyRecord,
    *,
    preferred: bool,
    pending: bool = False,
    owner: int | None = None,
) -> CheckoutKeyInfo:
    return CheckoutKeyInfo(
        project=slug,
        kind=kind,
        key_record_id=record.id,
        key_type=record.key_type,
        public_key=record.public_key,
        fingerprint_sha256=record.fingerprint_sha256,
        fingerprint_md5=record.fingerprint_md5,
        preferred=preferred,
        pending=pending,
        owner_user_id=owner,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
    )


def _find(keys: Sequence[CheckoutKeyInfo], slug: str, wanted: KeyFingerprint) -> CheckoutKeyInfo:
    for key in keys:
        stored = key.fingerprint_sha256 if wanted.kind == "sha256" else key.fingerprint_md5
        if stored == wanted.value:
            return key
    raise NotFound(
        "checkout_key_not_found",
        f"project {slug} has no checkout key {wanted.value}",
        "list the project's checkout keys to see their fingerprints",
        context={"project": slug, "fingerprint": wanted.value},
    )


def _fingerprint(text: str) -> KeyFingerprint:
    # A fingerprint that went through form decoding lost its '+' to a space; base64 has none.
    return parse_key_fingerprint(text.strip().replace(" ", "+"))


def _refuse_second_user_key(session: Session, project: Project, user_id: int) -> None:
    exists = session.scalar(
        select(UserKey.id).where(UserKey.project_id == project.id, UserKey.user_id == user_id)
    )
    if exists is not None:
        raise _user_key_exists(project.slug)


def _user_key_exists(slug: str) -> Conflict:
    return Conflict(
        "user_key_exists",
        f"you have a user key in project {slug} already",
        "delete that user key first to make a new one",
        context={"project": slug},
    )


def _admin_required(slug: str, doing: str) -> PermissionDenied:
    return PermissionDenied(
        "role_required",
        f"{doing} needs the admin role in project {slug}",
        "ask an admin of the project",
        context={"project": slug, "role": "admin"},
    )


def _canonical_path(segments: Sequence[str]) -> tuple[str, ...]:
    lowered = [segment.lower() for segment in segments]
    lowered[-1] = lowered[-1].removesuffix(".git")
    return tuple(lowered)


def _repository_path(url_text: str) -> tuple[str, ...] | None:
    try:
        url = parse_ssh_url(url_text)
    except URLError:
        return None  # a stored URL that no longer parses names no repository
    segments = url_segments(url)
    return _canonical_path(segments) if segments else None
