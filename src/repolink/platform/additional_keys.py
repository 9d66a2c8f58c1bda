"""Additional keys: a project's extra SSH keys for private dependencies (CircleCI's
"additional SSH keys", architecture.md#words).

Each is a key pair held like the deploy key (a :class:`~repolink.store.models.KeyRecord`, the
private half encrypted by the vault, never shown again), generated or imported, for one host
(``git.example.com``, or ``git.example.com:2222`` for one port of it) or, with a blank host
name, for any host. Key rules (:mod:`repolink.platform.key_rules`) point URL prefixes at them;
a build job asks for them by fingerprint (:meth:`AdditionalKeyService.select_keys`,
CircleCI's ``add_ssh_keys``).

Keys are named by fingerprint, SHA256 (``SHA256:…``, as ``ssh-keygen -l`` prints it) or MD5
(``MD5:aa:bb:…`` or just ``aa:bb:…``, as CircleCI shows it).

:class:`AdditionalKeyService` is what adapters call: each method is one transaction and answers
with :class:`AdditionalKeyInfo` records. The functions taking a ``session`` below it are the
pieces other services (key rules) use inside their own transaction; they never commit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from repolink.errors import Conflict, NotFound, ValidationError
from repolink.keys import PrivateKey, generate_key
from repolink.keys.fingerprints import read_fingerprint
from repolink.knownhosts import display_name, parse_host_port
from repolink.platform.projects import get_project
from repolink.store import Store
from repolink.store.key_records import store_private_key
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import (
    KEY_GENERATED,
    KEY_IMPORTED,
    Project,
    RepositoryConnection,
    new_id,
)
from repolink.store.models.platform_keys import AdditionalKey, KeyRule
from repolink.store.types import Clock, utcnow
from repolink.vault import Vault

log = logging.getLogger(__name__)

ANY_HOST = ""
# An additional key's id, as new_id() makes it: 32 lower-case hex digits.
_KEY_ID = re.compile(r"[0-9a-f]{32}")
_FINGERPRINT_EXAMPLE = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"

# ``reason`` of the errors whose code other modules raise too, so an adapter can tell them apart.
REASON_KEY_FINGERPRINT = "key_fingerprint"  # fingerprint_invalid: an SSH key's, not a host key's
REASON_IS_DEPLOY_KEY = "is_deploy_key"  # additional_key_not_found: it is the deploy key


@dataclass(frozen=True)
class AdditionalKeyInfo:
    """An additional key's public facts; its private half is never part of any answer."""

    id: str
    project: str
    host: str
    port: int | None
    key_record_id: str
    key_type: str
    bits: int
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    origin: str
    created_at: datetime
    last_used_at: datetime | None

    @property
    def hostname(self) -> str:
        """``host``, ``host:port``, or ``""`` for any host."""
        return hostname_text(self.host, self.port)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "project": self.project,
            "hostname": self.hostname,
            "key_type": self.key_type,
            "bits": self.bits,
            "public_key": self.public_key,
            "fingerprint_sha256": self.fingerprint_sha256,
            "fingerprint_md5": self.fingerprint_md5,
            "origin": self.origin,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


@dataclass(frozen=True)
class KeyFingerprint:
    """A fingerprint as the user named a key: ``kind`` is ``sha256`` or ``md5``; ``value`` is
    exactly as the key record stores it (``SHA256:…`` / ``MD5:aa:…``)."""

    kind: str
    value: str

    def matches(self, record: KeyRecord) -> bool:
        stored = record.fingerprint_sha256 if self.kind == "sha256" else record.fingerprint_md5
        return stored == self.value


def parse_key_fingerprint(text: str) -> KeyFingerprint:
    """A SHA256 or MD5 key fingerprint, or ``fingerprint_invalid`` (the input is never echoed:
    it may be anything pasted, a private key included)."""
    found = read_fingerprint(text)
    if found is not None:
        return KeyFingerprint(found.kind, found.value)
    raise ValidationError(
        "fingerprint_invalid",
        f"a key fingerprint is SHA256: and 43 base64 characters, or 16 colon-separated hex "
        f"pairs for MD5 (got {len(text.strip())} characters)",
        f"copy it from the list of the project's additional keys, like {_FINGERPRINT_EXAMPLE}",
        reason=REASON_KEY_FINGERPRINT,
        context={"example": _FINGERPRINT_EXAMPLE},
    )


def parse_hostname(text: str) -> tuple[str, int | None]:
    """``(host, port)`` from ``""`` (any host: ``("", None)``), ``host``, ``host:port``,
    ``[ipv6]`` or ``[ipv6]:port``; a port only when one was written."""
    stripped = text.strip()
    if not stripped:
        return ANY_HOST, None
    host, port = parse_host_port(stripped)
    bracketed = stripped.startswith("[")
    explicit_port = ("]:" in stripped) if bracketed else stripped.count(":") == 1
    return host, port if explicit_port else None


def hostname_text(host: str, port: int | None) -> str:
    if not host:
        return ANY_HOST
    if port is None:
        return f"[{host}]" if ":" in host else host
    return display_name(host, port)


class AdditionalKeyService:
    """A project's additional keys: add (generated or imported), list, find, remove, and the
    selection a build job asks for. Each method is one transaction."""

    def __init__(self, store: Store, vault: Callable[[], Vault], *, clock: Clock = utcnow) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock

    def add_key(
        self,
        project: str,
        key: PrivateKey | None = None,
        *,
        hostname: str = ANY_HOST,
        key_type: str = "ed25519",
        bits: int | None = None,
    ) -> AdditionalKeyInfo:
        """Store ``key`` (imported) or a new key of ``key_type`` as an additional key of
        ``project`` for ``hostname`` (blank: any host)."""
        host, port = parse_hostname(hostname)
        with self._store.session() as session:
            slug = get_project(session, project).slug  # a typo generates no key
        origin = KEY_IMPORTED if key is not None else KEY_GENERATED
        if key is None:
            # Outside any transaction: an RSA key takes a while; no one should wait on it.
            key = generate_key(key_type, bits, f"repolink-{slug}-additional")
        fingerprint = key.public_key.sha256_fingerprint
        vault = self._vault()
        with self._store.session() as session:
            row = get_project(session, project)
            _refuse_duplicate(session, row.id, row.slug, fingerprint)
            label = f"additional key of project {row.slug}"
            record = store_private_key(session, vault, key, label=label)
            additional = AdditionalKey(
                id=new_id(),
                project_id=row.id,
                key_record_id=record.id,
                fingerprint_sha256=fingerprint,
                host=host,
                port=port,
                origin=origin,
                created_at=self._clock(),
            )
            session.add(additional)
            session.flush()
            info = _info(row.slug, additional, record)
        log.info(
            "added %s additional key %s to project %s for %s",
            origin,
            fingerprint,
            info.project,
            info.hostname or "any host",
        )
        return info

    def list_keys(self, project: str) -> list[AdditionalKeyInfo]:
        """The project's additional keys, oldest first."""
        with self._store.session() as session:
            row = get_project(session, project)
            return [
                _info(row.slug, additional, record)
                for additional, record in additional_key_rows(session, row.id)
            ]

    def find_key(self, project: str, fingerprint: str) -> AdditionalKeyInfo:
        """The additional key of ``project`` with this SHA256 or MD5 fingerprint, or
        ``additional_key_not_found`` (saying so when it is the deploy key's)."""
        with self._store.session() as session:
            return find_additional_key(session, project, fingerprint)

    def remove_key(self, project: str, key: str) -> AdditionalKeyInfo:
        """Remove an additional key (named by its id, or by fingerprint) and its stored key
        pair. Refused (``additional_key_in_use``) while key rules point at it: remove those
        first, so no rule silently changes its key."""
        with self._store.session() as session:
            info = find_additional_key(session, project, key)
            rules = list(
                session.scalars(
                    select(KeyRule.prefix)
                    .where(KeyRule.additional_key_id == info.id)
                    .order_by(KeyRule.prefix)
                )
            )
            if rules:
                raise Conflict(
                    "additional_key_in_use",
                    f"key rules point at the additional key {info.fingerprint_sha256}: "
                    + ", ".join(rules),
                    "remove those key rules first",
                    context={"project": info.project, "fingerprint": info.fingerprint_sha256},
                )
            session.execute(delete(AdditionalKey).where(AdditionalKey.id == info.id))
            session.execute(delete(KeyRecord).where(KeyRecord.id == info.key_record_id))
        log.info("removed additional key %s of project %s", info.fingerprint_sha256, info.project)
        return info

    def select_keys(
        self, project: str, fingerprints: Sequence[str] | None
    ) -> list[AdditionalKeyInfo]:
        """The keys a build job asked for (CircleCI's ``add_ssh_keys``), in the order asked,
        each once; their ``key_record_id`` names the private half to load. ``None`` asks for
        every additional key of the project, oldest first, as ``add_ssh_keys`` without
        fingerprints does. An unknown fingerprint fails the whole call with
        ``additional_key_not_found``: a job must not start without a key it asked for."""
        with self._store.session() as session:
            row = get_project(session, project)
            rows = additional_key_rows(session, row.id)
            if fingerprints is None:
                return [_info(row.slug, additional, record) for additional, record in rows]
            chosen: dict[str, AdditionalKeyInfo] = {}
            for text in fingerprints:
                wanted = parse_key_fingerprint(text)
                found = next((item for item in rows if wanted.matches(item[1])), None)
                if found is None:
                    raise _not_found(session, row, wanted)
                chosen.setdefault(found[1].id, _info(row.slug, *found))
            return list(chosen.values())


# -- within another service's transaction ------------------------------------------------------


def find_additional_key(session: Session, project: str, fingerprint: str) -> AdditionalKeyInfo:
    """:meth:`AdditionalKeyService.find_key` in the caller's transaction; the key's id (as
    the API's addresses name it) is taken too."""
    row = get_project(session, project)
    if _KEY_ID.fullmatch(fingerprint.strip()):
        by_id = _by_id(session, row, fingerprint.strip())
        if by_id is not None:
            return by_id
        # No fingerprint has this shape (MD5's hex pairs come with colons).
        raise NotFound(
            "additional_key_not_found",
            f"project {row.slug} has no additional key with id {fingerprint.strip()}",
            "list the project's additional keys to see their ids and fingerprints",
            context={"project": row.slug},
        )
    wanted = parse_key_fingerprint(fingerprint)
    for additional, record in additional_key_rows(session, row.id):
        if wanted.matches(record):
            return _info(row.slug, additional, record)
    raise _not_found(session, row, wanted)


def _by_id(session: Session, project: Project, key_id: str) -> AdditionalKeyInfo | None:
    found = session.execute(
        select(AdditionalKey, KeyRecord)
        .join(KeyRecord, KeyRecord.id == AdditionalKey.key_record_id)
        .where(AdditionalKey.project_id == project.id, AdditionalKey.id == key_id)
    ).first()
    return _info(project.slug, *found) if found is not None else None


def additional_key_rows(session: Session, project_id: str) -> list[tuple[AdditionalKey, KeyRecord]]:
    """Every additional key of a project (by id) with its key record, oldest first."""
    query = (
        select(AdditionalKey, KeyRecord)
        .join(KeyRecord, KeyRecord.id == AdditionalKey.key_record_id)
        .where(AdditionalKey.project_id == project_id)
        .order_by(AdditionalKey.created_at, AdditionalKey.id)
    )
    return [(additional, record) for additional, record in session.execute(query)]


def _refuse_duplicate(session: Session, project_id: str, slug: str, fingerprint: str) -> None:
    exists = session.scalar(
        select(AdditionalKey.id).where(
            AdditionalKey.project_id == project_id,
            AdditionalKey.fingerprint_sha256 == fingerprint,
        )
    )
    if exists is not None:
        raise Conflict(
            "additional_key_exists",
            f"project {slug} has the additional key {fingerprint} already",
            "to use it for another host, remove it and add it again for that host",
            context={"project": slug, "fingerprint": fingerprint},
        )
    if deploy_key_fingerprint(session, project_id) == fingerprint:
        raise Conflict(
            "additional_key_is_deploy_key",
            f"{fingerprint} is the deploy key of project {slug}",
            "the deploy key needs no second entry; point key rules at the deploy key instead",
            context={"project": slug, "fingerprint": fingerprint},
        )


def deploy_key_fingerprint(session: Session, project_id: str) -> str | None:
    """The SHA256 fingerprint of the project's deploy key (``None``: not connected)."""
    return session.scalar(
        select(KeyRecord.fingerprint_sha256)
        .join(RepositoryConnection, RepositoryConnection.deploy_key_id == KeyRecord.id)
        .where(RepositoryConnection.project_id == project_id)
    )


def _not_found(session: Session, project: Project, wanted: KeyFingerprint) -> NotFound:
    deploy = session.scalar(
        select(KeyRecord)
        .join(RepositoryConnection, RepositoryConnection.deploy_key_id == KeyRecord.id)
        .where(RepositoryConnection.project_id == project.id)
    )
    context = {"project": project.slug, "fingerprint": wanted.value}
    if deploy is not None and wanted.matches(deploy):
        return NotFound(
            "additional_key_not_found",
            f"{wanted.value} is the deploy key of project {project.slug}, not an additional key",
            "the deploy key is used for the project's repository already; ask only for "
            "additional keys",
            reason=REASON_IS_DEPLOY_KEY,
            context=context,
        )
    return NotFound(
        "additional_key_not_found",
        f"project {project.slug} has no additional key {wanted.value}",
        "list the project's additional keys to see their fingerprints",
        context=context,
    )


def _info(slug: str, additional: AdditionalKey, record: KeyRecord) -> AdditionalKeyInfo:
    return AdditionalKeyInfo(
        id=additional.id,
        project=slug,
        host=additional.host,
        port=additional.port,
        key_record_id=record.id,
        key_type=record.key_type,
        bits=record.bits,
        public_key=record.public_key,
        fingerprint_sha256=record.fingerprint_sha256,
        fingerprint_md5=record.fingerprint_md5,
        origin=additional.origin,
        created_at=additional.created_at,
        last_used_at=record.last_used_at,
    )
