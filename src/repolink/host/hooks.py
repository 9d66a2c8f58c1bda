"""Webhooks of hosted repositories: which URLs hear of a push, and what became of each delivery.

Hooks are named by a uuid and belong to one repository (they go when it goes). A hook's secret
is encrypted by the vault, bound to the hook's uuid, and never leaves this module except to
sign a delivery: records handed out only say whether one is set.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repolink.errors import NotFound, ValidationError
from repolink.host.info import RepositoryInfo
from repolink.host.service import HostService
from repolink.netpolicy import ALLOWED_NETWORKS_SETTING, NetworkPolicy
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models.hooks import HostHook, HostHookDelivery, new_hook_uuid
from repolink.vault import Vault, VaultLoader

log = logging.getLogger(__name__)

PUSH_EVENT = "repo:push"
SUPPORTED_EVENTS = (PUSH_EVENT,)
MAX_URL_LENGTH = 2048
MAX_SECRET_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 200


@dataclass(frozen=True)
class HookInfo:
    """A webhook as it may be shown: never its secret."""

    uuid: str
    repository_full_name: str
    url: str
    description: str
    events: tuple[str, ...]
    active: bool
    secret_set: bool
    created_at: datetime


@dataclass(frozen=True)
class DeliveryInfo:
    """One delivery of one event to one hook, as of its latest attempt."""

    id: int
    hook_uuid: str
    request_uuid: str
    event: str
    status: str
    attempts: int
    last_response_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


def secret_record_id(hook_uuid: str) -> str:
    """The vault record id a hook's secret is bound to (no other row can borrow it)."""
    return f"host_hook:{hook_uuid}"


class HookService:
    """Adding, listing and removing a repository's webhooks; listing their deliveries."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        host: HostService,
        *,
        vault: Callable[[], Vault] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._host = host
        self._vault = vault or VaultLoader(settings)

    def add_hook(
        self,
        workspace: str,
        slug: str,
        url: str,
        *,
        events: Sequence[str] = SUPPORTED_EVENTS,
        secret: str | None = None,
        description: str = "",
        active: bool = True,
    ) -> HookInfo:
        """A new webhook on ``workspace/slug``; ``secret`` makes every delivery signed."""
        url = validate_hook_url(url)
        check_hook_target(url, self._settings.network_policy)
        checked_events = validate_events(events)
        description = _validate_description(description)
        secret_bytes = _validate_secret(secret)
        repo = self._host.get_repository(workspace, slug)
        hook_uuid = new_hook_uuid()
        encrypted = None
        if secret_bytes is not None:
            encrypted = self._vault().encrypt(secret_bytes, record_id=secret_record_id(hook_uuid))
        row = HostHook(
            uuid=hook_uuid,
            repository_id=repo.id,
            url=url,
            description=description,
            events=list(checked_events),
            active=active,
            secret_encrypted=encrypted,
            created_at=utcnow(),
        )
        try:
            with self._store.session() as session:
                session.add(row)
                session.flush()
                info = _hook_info(row, repo)
        except IntegrityError:
            # The repository was deleted between the look-up and the insert.
            raise _repository_gone(repo) from None
        log.info("added webhook %s to %s", info.uuid, repo.full_name)
        return info

    def list_hooks(self, workspace: str, slug: str) -> list[HookInfo]:
        repo = self._host.get_repository(workspace, slug)
        with self._store.session() as session:
            rows = session.scalars(
                select(HostHook).where(HostHook.repository_id == repo.id).order_by(HostHook.id)
            )
            return [_hook_info(row, repo) for row in rows]

    def get_hook(self, workspace: str, slug: str, hook_uuid: str) -> HookInfo:
        repo = self._host.get_repository(workspace, slug)
        with self._store.session() as session:
            return _hook_info(_existing_hook(session, repo, hook_uuid), repo)

    def remove_hook(self, workspace: str, slug: str, hook_uuid: str) -> None:
        """Remove the hook and its deliveries, pending ones included."""
        repo = self._host.get_repository(workspace, slug)
        with self._store.session() as session:
            row = _existing_hook(session, repo, hook_uuid)
            removed = row.uuid
            session.delete(row)
        log.info("removed webhook %s from %s", removed, repo.full_name)

    def list_deliveries(self, workspace: str, slug: str, hook_uuid: str) -> list[DeliveryInfo]:
        """The hook's kept deliveries, newest first."""
        repo = self._host.get_repository(workspace, slug)
        with self._store.session() as session:
            hook = _existing_hook(session, repo, hook_uuid)
            rows = session.scalars(
                select(HostHookDelivery)
                .where(HostHookDelivery.hook_id == hook.id)
                .order_by(HostHookDelivery.id.desc())
            )
            return [_delivery_info(row, hook.uuid) for row in rows]


def validate_hook_url(url: str) -> str:
    """An absolute ``http``/``https`` URL with a host, or ``hook_url_invalid``.

    The message never repeats the URL: it may carry credentials.
    """
    text = url.strip()
    problem = None
    if not text or len(text) > MAX_URL_LENGTH:
        problem = f"a webhook URL is 1–{MAX_URL_LENGTH} characters"
    elif any(char.isspace() or not char.isprintable() for char in text):
        problem = "a webhook URL has no spaces or control characters"
    else:
        try:
            parts = urlsplit(text)
            _ = parts.port  # raises ValueError for a port that is not a number in range
        except ValueError:
            parts = None
        if parts is None:
            problem = "the webhook URL cannot be parsed"
        elif parts.scheme not in ("http", "https"):
            problem = "a webhook URL starts with http:// or https://"
        elif not parts.hostname:
            problem = "the webhook URL names no host"
    if problem is not None:
        raise ValidationError(
            "hook_url_invalid", problem, "give the receiver's URL, e.g. https://ci.example/hooks"
        )
    return text


def check_hook_target(url: str, policy: NetworkPolicy) -> None:
    """Refuse (``webhook_url_forbidden``) a URL on an address ``policy`` refuses, in any
    spelling; a name is judged again on its addresses at each delivery."""
    host = urlsplit(url).hostname or ""
    refusal = policy.host_refusal(host)
    if refusal is not None:
        raise ValidationError(
            "webhook_url_forbidden",
            f"the webhook URL's host is {refusal}; the host sends webhooks to public "
            "addresses only",
            "give a receiver on a public address, or have the operator allow its network "
            f"in {ALLOWED_NETWORKS_SETTING} (comma-separated CIDRs, e.g. 10.0.0.0/8)",
            context={"setting": ALLOWED_NETWORKS_SETTING},
        )


def validate_events(events: Sequence[str]) -> tuple[str, ...]:
    """The events, deduplicated in order; each must be one the host sends."""
    if isinstance(events, str) or not events:
        raise ValidationError(
            "hook_events_invalid",
            "a webhook subscribes to a list of at least one event",
            f"use events: [{PUSH_EVENT!r}]",
        )
    checked: list[str] = []
    for event in events:
        if event not in SUPPORTED_EVENTS:
            raise ValidationError(
                "hook_event_unsupported",
                "the host sends only these events: " + ", ".join(SUPPORTED_EVENTS),
                f"subscribe to {PUSH_EVENT!r}",
            )
        if event not in checked:
            checked.append(event)
    return tuple(checked)


def normalize_hook_uuid(text: str) -> str | None:
    """``text`` as a canonical uuid string; Bitbucket's ``{…}`` spelling is accepted."""
    candidate = text.strip()
    if candidate.startswith("{") and candidate.endswith("}"):
        candidate = candidate[1:-1]
    if len(candidate) > 36:
        return None
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return None


def _existing_hook(session: Session, repo: RepositoryInfo, hook_uuid: str) -> HostHook:
    canonical = normalize_hook_uuid(hook_uuid)
    row = None
    if canonical is not None:
        row = session.scalar(
            select(HostHook).where(HostHook.uuid == canonical, HostHook.repository_id == repo.id)
        )
    if row is None:
        # Only a well-formed uuid is named: anything else the caller sent is not echoed.
        which = f"webhook {{{canonical}}}" if canonical is not None else "such webhook"
        raise NotFound(
            "hook_not_found",
            f"the repository {repo.full_name} has no {which}",
            f"check the hook's uuid against the webhooks of {repo.full_name}",
            context={"repository": repo.full_name},
        )
    return row


def _validate_secret(secret: str | None) -> bytes | None:
    if secret is None:
        return None
    if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isprintable():
        raise ValidationError(
            "hook_secret_invalid",
            f"a webhook secret is 1–{MAX_SECRET_LENGTH} printable characters",
            "generate one with: openssl rand -hex 32",
        )
    return secret.encode("utf-8")


def _validate_description(description: str) -> str:
    text = description.strip()
    if len(text) > MAX_DESCRIPTION_LENGTH or not text.isprintable():
        raise ValidationError(
            "hook_description_invalid",
            f"a webhook description is at most {MAX_DESCRIPTION_LENGTH} printable characters",
            "shorten it",
        )
    return text


def _repository_gone(repo: RepositoryInfo) -> NotFound:
    return NotFound(
        "repository_not_found",
        f"there is no repository {repo.full_name}",
        f"check the name against the repositories of workspace {repo.workspace}",
        context={"workspace": repo.workspace},
    )


def _hook_info(row: HostHook, repo: RepositoryInfo) -> HookInfo:
    return HookInfo(
        uuid=row.uuid,
        repository_full_name=repo.full_name,
        url=row.url,
        description=row.description,
        events=tuple(row.events),
        active=row.active,
        secret_set=row.has_secret,
        created_at=row.created_at,
    )


def _delivery_info(row: HostHookDelivery, hook_uuid: str) -> DeliveryInfo:
    return DeliveryInfo(
        id=row.id,
        hook_uuid=hook_uuid,
        request_uuid=row.request_uuid,
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        last_response_code=row.last_response_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def reencrypt_hook_secrets(session: Session, vault: Vault) -> int:
    """Re-encrypt every webhook secret not under the current master key; return how many."""
    hooks = session.scalars(select(HostHook).where(HostHook.secret_encrypted.is_not(None)))
    count = 0
    for hook in hooks:
        token = hook.secret_encrypted
        assert token is not None  # by the query
        if not vault.needs_reencrypt(token):
            continue
        record_id = secret_record_id(hook.uuid)
        hook.secret_encrypted = vault.encrypt(
            vault.decrypt(token, record_id=record_id), record_id=record_id
        )
        count += 1
    session.flush()
    log.info(
        "re-encrypted %d webhook secrets with master key version %d", count, vault.current_version
    )
    return count
