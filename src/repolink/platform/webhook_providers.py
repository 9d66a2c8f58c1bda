"""How each forge's webhook reads: its event, its delivery id, its signature, its repository.

Pure rules, no store: the receiving use case (:mod:`repolink.platform.webhooks_in`) asks them
what a request says and decides what to do with it.

- ``bitbucket`` (Cloud): event ``X-Event-Key: repo:push``, signature
  ``X-Hub-Signature: sha256=…``, delivery ``X-Request-UUID``;
- ``bitbucket-server`` (Data Center): ``X-Event-Key: repo:refs_changed`` (and
  ``diagnostics:ping``), ``X-Hub-Signature: sha256=…``, ``X-Request-Id``;
- ``github``: ``X-GitHub-Event: push`` (and ``ping``), ``X-Hub-Signature-256: sha256=…``,
  ``X-GitHub-Delivery``;
- ``gitlab``: ``X-Gitlab-Event: Push Hook`` or ``Tag Push Hook``, ``X-Gitlab-Token`` (the
  secret itself), ``Idempotency-Key`` or else ``X-Gitlab-Event-UUID``;
- ``generic``: ``X-Repolink-Event`` (optional, ``push`` or ``ping``), ``X-Repolink-Signature:
  sha256=…``, ``X-Repolink-Delivery``.

Signatures are HMAC-SHA256 over the raw body (:mod:`repolink.signing`); GitLab sends the
secret itself, compared in constant time. Only the body is signed: a delivery id is a header
a replayer can change, so replay detection stops honest redeliveries and copies of a request,
and what a replay can do at all is ask for a fetch, which joins the one already waiting.

A payload is only a hint of *which repository* moved (:func:`payload_repositories`); its
commit list is never read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from repolink.repo_urls import RepositoryAddress, path_address, repository_address
from repolink.signing import same_secret, signature_matches

log = logging.getLogger(__name__)

__all__ = [
    "EVENT_IGNORED",
    "EVENT_PING",
    "EVENT_PUSH",
    "PROVIDERS",
    "Provider",
    "ReceivedHeaders",
    "lower_headers",
    "parse_payload",
    "payload_repositories",
    "provider_named",
]

EVENT_PUSH = "push"
EVENT_PING = "ping"
EVENT_IGNORED = "ignored"

# What is kept of a sender's event name and delivery id (both are unsigned header text).
MAX_EVENT_LENGTH = 64
MAX_DELIVERY_ID_LENGTH = 128

Payload = Mapping[str, Any]


@dataclass(frozen=True)
class ReceivedHeaders:
    """What a provider's headers say about one request (none of it is signed)."""

    event: str
    """The event's name as sent, printable and at most 64 characters (``""``: none sent)."""
    kind: str
    """``push`` (queue a fetch), ``ping`` (a test delivery) or ``ignored``."""
    delivery_id: str | None
    """The sender's id of this delivery, the same across its redeliveries; ``None``: none sent."""


@dataclass(frozen=True)
class Provider:
    """One forge's webhook dialect."""

    name: str
    event_header: str | None
    push_events: frozenset[str]
    ping_events: frozenset[str]
    delivery_headers: tuple[str, ...]
    signature_header: str
    sends_secret: bool
    """True when the header holds the secret itself (GitLab), not an HMAC of the body."""
    default_event: str | None
    """The event of a request that names none (the generic provider's plain POST)."""
    repositories: Callable[[Payload], list[RepositoryAddress]]
    names_repository: bool
    """Whether every push payload of this provider names its repository: one that names none
    cannot be told to be the project's (the generic provider's body may be anything)."""

    def verify(self, secret: bytes, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the request is signed with ``secret``. ``headers``: lower-case names."""
        given = headers.get(self.signature_header)
        if self.sends_secret:
            return same_secret(secret, given)
        return signature_matches(secret, body, given)

    def read_headers(self, headers: Mapping[str, str]) -> ReceivedHeaders:
        """Event and delivery id of a request. ``headers``: lower-case names."""
        raw_event = headers.get(self.event_header, "") if self.event_header else ""
        event = _printable(raw_event, MAX_EVENT_LENGTH) or self.default_event or ""
        if event in self.push_events:
            kind = EVENT_PUSH
        elif event in self.ping_events:
            kind = EVENT_PING
        else:
            kind = EVENT_IGNORED
        delivery_id = None
        for name in self.delivery_headers:
            delivery_id = _printable(headers.get(name, ""), MAX_DELIVERY_ID_LENGTH)
            if delivery_id:
                break
        return ReceivedHeaders(event=event, kind=kind, delivery_id=delivery_id or None)


def lower_headers(items: Sequence[tuple[str, str]] | Mapping[str, str]) -> dict[str, str]:
    """Header names in lower case (HTTP's are case-insensitive); the first of a repeated one."""
    pairs = items.items() if isinstance(items, Mapping) else items
    lowered: dict[str, str] = {}
    for name, value in pairs:
        lowered.setdefault(name.lower(), value)
    return lowered


def parse_payload(body: bytes, content_type: str | None) -> Payload | None:
    """The body as a JSON object, or ``None`` when it is not one.

    GitHub may send ``application/x-www-form-urlencoded`` with the JSON in its ``payload``
    field; everyone else sends JSON. Call this only after the signature verified: it is the
    first thing that reads the body's content.
    """
    text: str | bytes = body
    if content_type and content_type.split(";")[0].strip().lower() == (
        "application/x-www-form-urlencoded"
    ):
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            return None
        values = fields.get("payload")
        if not values:
            return None
        text = values[0]
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: a signed but absurdly nested body must not become a 500.
        return None
    return payload if isinstance(payload, dict) else None


def payload_repositories(provider: Provider, payload: Payload | None) -> list[RepositoryAddress]:
    """Every repository address ``payload`` names (in any of its spellings); ``[]``: none."""
    if payload is None:
        return []
    return provider.repositories(payload)


# -- the payloads ---------------------------------------------------------------------------


def _github(payload: Payload) -> list[RepositoryAddress]:
    repository = _object(payload.get("repository"))
    urls = [repository.get(name) for name in ("ssh_url", "clone_url", "git_url", "html_url")]
    return _addresses(urls) or _paths([repository.get("full_name")])


def _gitlab(payload: Payload) -> list[RepositoryAddress]:
    project = _object(payload.get("project"))
    repository = _object(payload.get("repository"))
    urls = [project.get(name) for name in ("git_ssh_url", "git_http_url", "web_url")]
    urls += [repository.get(name) for name in ("git_ssh_url", "git_http_url", "homepage")]
    return _addresses(urls) or _paths([project.get("path_with_namespace")])


def _bitbucket_cloud(payload: Payload) -> list[RepositoryAddress]:
    repository = _object(payload.get("repository"))
    links = _object(repository.get("links"))
    urls = [_object(link).get("href") for link in _list(links.get("clone"))]
    urls.append(_object(links.get("html")).get("href"))
    return _addresses(urls) or _paths([repository.get("full_name")])


def _bitbucket_server(payload: Payload) -> list[RepositoryAddress]:
    repository = _object(payload.get("repository"))
    links = _object(repository.get("links"))
    # Only the SSH clone links: the HTTP ones read /scm/PROJECT/repo.git, another path.
    ssh_links = [
        _object(link).get("href")
        for link in _list(links.get("clone"))
        if _object(link).get("name") == "ssh"
    ]
    key = _object(repository.get("project")).get("key")
    slug = repository.get("slug")
    path = f"{key}/{slug}" if isinstance(key, str) and isinstance(slug, str) else None
    return _addresses(ssh_links) or _paths([path])


def _generic(payload: Payload) -> list[RepositoryAddress]:
    # {"repository": "git@host:team/app.git"} or {"repository": {"url": …}}; both optional.
    named = payload.get("repository")
    if isinstance(named, str):
        return _addresses([named])
    repository = _object(named)
    urls = [repository.get(name) for name in ("url", "ssh_url", "clone_url", "html_url")]
    return _addresses(urls) or _paths([repository.get("full_name")])


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _addresses(values: Sequence[object]) -> list[RepositoryAddress]:
    found = (repository_address(value) for value in values if isinstance(value, str))
    return [address for address in found if address is not None]


def _paths(values: Sequence[object]) -> list[RepositoryAddress]:
    found = (path_address(value) for value in values if isinstance(value, str))
    return [address for address in found if address is not None]


def _printable(value: str, limit: int) -> str:
    text = value.strip()
    if len(text) > limit or not text.isascii() or not text.isprintable():
        return ""
    return text


# -- the table ------------------------------------------------------------------------------

PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        Provider(
            name="bitbucket",
            event_header="x-event-key",
            push_events=frozenset({"repo:push"}),
            ping_events=frozenset(),
            # X-Hook-UUID names the hook, the same for all its deliveries: not a delivery id.
            delivery_headers=("x-request-uuid",),
            signature_header="x-hub-signature",
            sends_secret=False,
            default_event=None,
            repositories=_bitbucket_cloud,
            names_repository=True,
        ),
        Provider(
            name="bitbucket-server",
            event_header="x-event-key",
            push_events=frozenset({"repo:refs_changed"}),
            ping_events=frozenset({"diagnostics:ping"}),
            delivery_headers=("x-request-id",),
            signature_header="x-hub-signature",
            sends_secret=False,
            default_event=None,
            repositories=_bitbucket_server,
            names_repository=True,
        ),
        Provider(
            name="github",
            event_header="x-github-event",
            push_events=frozenset({"push"}),
            ping_events=frozenset({"ping"}),
            delivery_headers=("x-github-delivery",),
            signature_header="x-hub-signature-256",
            sends_secret=False,
            default_event=None,
            repositories=_github,
            names_repository=True,
        ),
        Provider(
            name="gitlab",
            event_header="x-gitlab-event",
            push_events=frozenset({"Push Hook", "Tag Push Hook"}),
            ping_events=frozenset(),
            # Idempotency-Key (GitLab 17.4+) stays the same across retries of one event.
            delivery_headers=("idempotency-key", "x-gitlab-event-uuid"),
            signature_header="x-gitlab-token",
            sends_secret=True,
            default_event=None,
            repositories=_gitlab,
            names_repository=True,
        ),
        Provider(
            name="generic",
            event_header="x-repolink-event",
            push_events=frozenset({"push"}),
            ping_events=frozenset({"ping"}),
            delivery_headers=("x-repolink-delivery",),
            signature_header="x-repolink-signature",
            sends_secret=False,
            default_event="push",
            repositories=_generic,
            names_repository=False,
        ),
    )
}


def provider_named(name: str) -> Provider | None:
    """The provider ``name`` (``github`` …), or ``None``."""
    return PROVIDERS.get(name)
