"""Webhooks in: a forge says a project's repository moved, and the project's fetch is queued.

Each project has one webhook secret (made on first use, encrypted by the vault and bound to
its row) and one receiver per provider (:mod:`repolink.platform.webhook_providers`). A request
goes through, in this order:

1. the project and its secret: an unknown project, a project without a secret and a wrong or
   missing signature all raise the same :class:`~repolink.errors.Unauthorized` — a stranger
   learns nothing of which projects exist (a project without a secret also records a
   ``refused`` delivery, so its admin sees that a forge is calling);
2. the event: one that is not a push is recorded (``ignored_event``, ``ping``) and nothing
   more;
3. the delivery id, claimed by inserting the delivery's row: the database's unique constraint
   makes a second request with that id ``replayed``, race-free across threads and processes;
4. the repository the payload names, compared with the connection's in every spelling
   (:mod:`repolink.repo_urls`): another one is ``other_repository``;
5. the fetch, queued through the fetch requests service (``trigger="webhook"``), which joins
   the one already waiting: ``queued``, with the run's id.

A push for the project's repository does 3 and 5 in one short write transaction — the run
queued or joined, then the row that claims the id and names the run — after one read (1):
a delivery of a burst costs two transactions on a plain connection, not seven ORM sessions.
When that transaction fails (the id was claimed before, or the connection was removed
meanwhile), 3 and 5 run one after the other, which tells the two apart.

The payload is read only after the signature verified, and only for the repository it names;
its commit list is never trusted — the fetch finds out what is new.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from sqlalchemy import (
    Connection,
    LargeBinary,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repolink.errors import NotFound, RepolinkError, Unauthorized, ValidationError, VaultError
from repolink.platform.fetch_queue import QueuedRun
from repolink.platform.projects import get_project
from repolink.platform.webhook_providers import (
    EVENT_IGNORED,
    EVENT_PING,
    PROVIDERS,
    Provider,
    ReceivedHeaders,
    lower_headers,
    parse_payload,
    payload_repositories,
    provider_named,
)
from repolink.repo_urls import repository_address
from repolink.store import Store
from repolink.store.models.platform import new_id
from repolink.store.models.webhooks_in import (
    OUTCOME_FAILED,
    OUTCOME_IGNORED_EVENT,
    OUTCOME_INVALID_PAYLOAD,
    OUTCOME_NOT_CONNECTED,
    OUTCOME_OTHER_REPOSITORY,
    OUTCOME_PING,
    OUTCOME_QUEUED,
    OUTCOME_REFUSED,
    OUTCOME_REPLAYED,
    ProjectWebhookSecret,
    WebhookDeliveryIn,
)
from repolink.store.types import Clock, utcnow
from repolink.vault import Vault, VaultLoader

log = logging.getLogger(__name__)

__all__ = [
    "KEEP_DELIVERIES",
    "PROVIDER_NAMES",
    "RECEIVER_PATH",
    "WEBHOOK_TRIGGER",
    "FetchRequester",
    "ReceivedDelivery",
    "WebhookDeliveryInfo",
    "WebhookInService",
    "WebhookSecret",
    "receiver_paths",
    "reencrypt_webhook_secrets",
    "secret_record_id",
]

PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
# Where each receiver listens, on the server's HTTP address (one URL per provider and project).
RECEIVER_PATH = "/hooks/{provider}/{project}"
WEBHOOK_TRIGGER = "webhook"
# Deliveries kept per project (the newest): the history shown, and the ids replays are told by.
KEEP_DELIVERIES = 200
# A recognisable prefix, so secret scanners can find a leaked one.
SECRET_PREFIX = "rlwh_"  # noqa: S105 (a prefix, not a secret)
_SECRET_BYTES = 32
# Verified against when there is no project or no secret, so that answer takes as long as a
# wrong signature's.
_NO_SECRET = b"\x00" * _SECRET_BYTES


class QueuedFetch(Protocol):
    """What the receiver needs of a queued fetch run."""

    @property
    def id(self) -> object: ...


class FetchRequester(Protocol):
    """The fetch requests service, as the receiver uses it (``app.fetch_requests``)."""

    def request(self, project_slug: str, *, trigger: str) -> QueuedFetch: ...

    def request_within(
        self, db: Connection, connection_id: str, project_id: str, *, trigger: str
    ) -> QueuedRun | None: ...

    def announce(self, queued: QueuedRun) -> None: ...


@dataclass(frozen=True)
class WebhookSecret:
    """A project's webhook secret, for its admins; ``new``: made by this call (to audit)."""

    value: str = field(repr=False)
    created_at: datetime
    new: bool = False


@dataclass(frozen=True)
class WebhookDeliveryInfo:
    """One request a project's receivers accepted (or refused for want of a secret)."""

    id: int
    provider: str
    event: str
    delivery_id: str | None
    outcome: str
    fetch_run_id: str | None
    received_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "provider": self.provider,
            "event": self.event,
            "delivery_id": self.delivery_id,
            "outcome": self.outcome,
            "fetch_run_id": self.fetch_run_id,
            "received_at": self.received_at.isoformat(),
        }


@dataclass(frozen=True)
class ReceivedDelivery:
    """What the receiver did with one request (``record_id``: its row in the history)."""

    record_id: int
    provider: str
    event: str
    delivery_id: str | None
    outcome: str
    fetch_run_id: str | None = None

    @property
    def queued(self) -> bool:
        return self.outcome == OUTCOME_QUEUED


@dataclass(frozen=True)
class _Target:
    """What one transaction read of the addressed project."""

    project_id: str
    slug: str
    secret: bytes | None = field(repr=False)
    connection_id: str | None
    connection_url: str | None


def receiver_paths(slug: str) -> dict[str, str]:
    """Provider → the path of the project's receiver (``/hooks/github/app`` …)."""
    return {name: RECEIVER_PATH.format(provider=name, project=slug) for name in PROVIDER_NAMES}


def secret_record_id(row_id: str) -> str:
    """The vault record id a project's webhook secret is bound to."""
    return f"project_webhook_secret:{row_id}"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


class WebhookInService:
    """A project's webhook secret and deliveries, and the receiving of a delivery.

    ``fetch_requests`` gives the service that queues fetches; it is asked for only when a
    delivery queues one.
    """

    def __init__(
        self,
        store: Store,
        vault: VaultLoader,
        fetch_requests: Callable[[], FetchRequester],
        *,
        clock: Clock = utcnow,
        keep: int = KEEP_DELIVERIES,
    ) -> None:
        self._store = store
        self._vault = vault
        self._fetch_requests = fetch_requests
        self._clock = clock
        self._keep = max(keep, 1)

    # -- the secret ------------------------------------------------------------------------

    def secret(self, slug: str) -> WebhookSecret:
        """The project's webhook secret, made now if it has none yet."""
        with self._store.session() as session:
            project = get_project(session, slug)
            row = _secret_row(session, project.id)
            if row is not None:
                secret = self._decrypt(row.id, row.secret_encrypted)
                return WebhookSecret(secret.decode(), row.created_at)
        try:
            return self._store_new_secret(slug, replace=False)
        except IntegrityError:
            # Another request made it between the read and the insert: that one stands.
            return self.secret(slug)

    def regenerate_secret(self, slug: str) -> WebhookSecret:
        """A new secret for the project; the old one stops verifying at once."""
        secret = self._store_new_secret(slug, replace=True)
        log.info("regenerated the webhook secret of project %s", slug)
        return secret

    def has_secret(self, slug: str) -> bool:
        with self._store.session() as session:
            return _secret_row(session, get_project(session, slug).id) is not None

    def _store_new_secret(self, slug: str, *, replace: bool) -> WebhookSecret:
        value = new_secret()
        with self._store.session() as session:
            project = get_project(session, slug)
            row = _secret_row(session, project.id) if replace else None
            if row is None:
                row = ProjectWebhookSecret(
                    id=new_id(), project_id=project.id, created_at=self._clock()
                )
                session.add(row)
            row.created_at = self._clock()
            row.secret_encrypted = self._vault().encrypt(
                value.encode(), record_id=secret_record_id(row.id)
            )
            session.flush()
            return WebhookSecret(value, row.created_at, new=True)

    def _decrypt(self, row_id: str, encrypted: bytes) -> bytes:
        record_id = secret_record_id(row_id)
        try:
            return self._vault().decrypt(encrypted, record_id=record_id)
        except VaultError:
            # The key file may have gained a master key version since it was read.
            return self._vault.reload().decrypt(encrypted, record_id=record_id)

    # -- deliveries ------------------------------------------------------------------------

    def deliveries(self, slug: str, *, limit: int = 50) -> list[WebhookDeliveryInfo]:
        """The project's most recent deliveries, newest first."""
        with self._store.session() as session:
            project = get_project(session, slug)
            rows = session.scalars(
                select(WebhookDeliveryIn)
                .where(WebhookDeliveryIn.project_id == project.id)
                .order_by(WebhookDeliveryIn.id.desc())
                .limit(max(1, min(limit, self._keep)))
            )
            return [_delivery_info(row) for row in rows]

    # -- receiving -------------------------------------------------------------------------

    def receive(
        self,
        provider_name: str,
        slug: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> ReceivedDelivery:
        """Receive one request for ``slug`` from ``provider_name`` (see the module's docstring).

        ``body`` is the raw body as received. Raises :class:`NotFound` for an unknown provider,
        :class:`Unauthorized` when the request is not signed with the project's secret (or
        there is no such project, or it has no secret), :class:`ValidationError` for a signed
        push whose body is not a JSON object.
        """
        provider = provider_named(provider_name)
        if provider is None:
            raise NotFound(
                "webhook_provider_unknown",
                "there is no webhook receiver for this provider",
                "use one of: " + ", ".join(PROVIDER_NAMES),
            )
        lowered = lower_headers(headers)
        target = self._target(slug)
        secret = target.secret if target is not None else None
        verified = provider.verify(secret or _NO_SECRET, lowered, body)
        if target is None or secret is None or not verified:
            if target is not None and secret is None:
                self._record_refused(target, provider, provider.read_headers(lowered))
            log.info("refused a %s webhook: not signed with a project's secret", provider.name)
            raise _unauthorized()
        return self._accept(target, provider, provider.read_headers(lowered), lowered, body)

    def _accept(
        self,
        target: _Target,
        provider: Provider,
        received: ReceivedHeaders,
        headers: Mapping[str, str],
        body: bytes,
    ) -> ReceivedDelivery:
        if received.kind == EVENT_IGNORED:
            return self._record(target, provider, received, OUTCOME_IGNORED_EVENT)
        if received.kind == EVENT_PING:
            return self._record(target, provider, received, OUTCOME_PING)
        if target.connection_id is None or target.connection_url is None:
            return self._record(target, provider, received, OUTCOME_NOT_CONNECTED)
        payload = parse_payload(body, headers.get("content-type"))
        if payload is None and provider.names_repository:
            self._record(target, provider, received, OUTCOME_INVALID_PAYLOAD)
            raise ValidationError(
                "webhook_payload_invalid",
                f"the {provider.name} push's body is not a JSON object",
                "send the event's JSON payload as the request body",
            )
        addresses = payload_repositories(provider, payload)
        connection = repository_address(target.connection_url)
        # A generic body that names no repository is only a "fetch now".
        names_one = bool(addresses) or provider.names_repository
        if names_one and (connection is None or not any(a.matches(connection) for a in addresses)):
            return self._record(target, provider, received, OUTCOME_OTHER_REPOSITORY)
        return self._queue(target, target.connection_id, provider, received)

    def _queue(
        self, target: _Target, connection_id: str, provider: Provider, received: ReceivedHeaders
    ) -> ReceivedDelivery:
        """Queue the fetch (or join the run that waits) and record the delivery with its run,
        in one write transaction: what most deliveries of a burst do. A replayed delivery id
        and a connection removed meanwhile fail it, and take the long way (:meth:`_apart`),
        which tells them apart."""
        requests = self._fetch_requests()
        run, record_id = None, None
        try:
            with self._store.writing() as db:
                run = requests.request_within(
                    db, connection_id, target.project_id, trigger=WEBHOOK_TRIGGER
                )
                if run is not None:
                    record_id = self._insert_on(
                        db, target, provider, received, OUTCOME_QUEUED, claims=True, run=run.id
                    )
        except IntegrityError:
            record_id = None
        if run is None or record_id is None:
            return self._apart(target, provider, received)
        requests.announce(run)
        log.info("webhook from %s queued fetch %d of %s", provider.name, run.id, target.slug)
        return _received(record_id, provider, received, OUTCOME_QUEUED, run=run.id)

    def _apart(
        self, target: _Target, provider: Provider, received: ReceivedHeaders
    ) -> ReceivedDelivery:
        """The delivery's id claimed by its row first (a replay stops there), then the fetch
        requested in transactions of its own, then the row told the run."""
        recorded = self._record(target, provider, received, OUTCOME_QUEUED)
        if not recorded.queued:
            return recorded  # replayed
        try:
            run = self._fetch_requests().request(target.slug, trigger=WEBHOOK_TRIGGER)
        except RepolinkError as exc:
            outcome = OUTCOME_NOT_CONNECTED if isinstance(exc, NotFound) else OUTCOME_FAILED
            log.warning(
                "a webhook delivery for %s queued no fetch: %s", target.slug, exc.one_line()
            )
            self._update(recorded, outcome=outcome, run_id=None)
            return replace(recorded, outcome=outcome)
        run_id = str(run.id)
        self._update(recorded, outcome=OUTCOME_QUEUED, run_id=run_id)
        log.info("webhook from %s queued fetch %s of %s", recorded.provider, run_id, target.slug)
        return replace(recorded, fetch_run_id=run_id)

    def _target(self, slug: str) -> _Target | None:
        # One query: every delivery, refused ones included, starts here.
        with self._store.reading() as db:
            found = db.execute(_TARGET, {"slug": slug}).first()
        if found is None:
            return None
        project_id, project_slug, secret_id, encrypted, connection_id, url = found
        secret = self._decrypt(secret_id, encrypted) if secret_id is not None else None
        return _Target(project_id, project_slug, secret, connection_id, url)

    def _record_refused(
        self, target: _Target, provider: Provider, received: ReceivedHeaders
    ) -> None:
        # No dedup key: an unverified request must not claim a delivery id.
        self._insert(target, provider, received, OUTCOME_REFUSED, dedup=False)

    def _record(
        self, target: _Target, provider: Provider, received: ReceivedHeaders, outcome: str
    ) -> ReceivedDelivery:
        return self._insert(target, provider, received, outcome, dedup=True)

    def _insert(
        self,
        target: _Target,
        provider: Provider,
        received: ReceivedHeaders,
        outcome: str,
        *,
        dedup: bool,
    ) -> ReceivedDelivery:
        claims = dedup and received.delivery_id is not None
        try:
            row_id = self._insert_row(target, provider, received, outcome, claims=claims)
        except IntegrityError:
            if not claims:
                raise
            # Seen before (or the project went away meanwhile: then the row fails again).
            outcome = OUTCOME_REPLAYED
            row_id = self._insert_row(target, provider, received, outcome, claims=False)
        return _received(row_id, provider, received, outcome)

    def _insert_row(
        self,
        target: _Target,
        provider: Provider,
        received: ReceivedHeaders,
        outcome: str,
        *,
        claims: bool,
    ) -> int:
        with self._store.writing() as db:
            return self._insert_on(db, target, provider, received, outcome, claims=claims)

    def _insert_on(
        self,
        db: Connection,
        target: _Target,
        provider: Provider,
        received: ReceivedHeaders,
        outcome: str,
        *,
        claims: bool,
        run: int | None = None,
    ) -> int:
        """Insert the delivery's row (claiming its id when ``claims``) and prune the project's
        oldest; the row's id."""
        row_id: int = db.execute(
            _INSERT_DELIVERY,
            {
                "project_id": target.project_id,
                "provider": provider.name,
                "event": received.event,
                "delivery_id": received.delivery_id,
                "dedup_key": received.delivery_id if claims else None,
                "outcome": outcome,
                "fetch_run_id": str(run) if run is not None else None,
                "received_at": self._clock(),
            },
        ).scalar_one()
        _prune(db, target.project_id, self._keep)
        return row_id

    def _update(self, recorded: ReceivedDelivery, *, outcome: str, run_id: str | None) -> None:
        with self._store.writing() as db:
            db.execute(
                _SET_OUTCOME,
                {"record_id": recorded.record_id, "new_outcome": outcome, "new_run_id": run_id},
            )


def _secret_row(session: Session, project_id: str) -> ProjectWebhookSecret | None:
    return session.scalar(
        select(ProjectWebhookSecret).where(ProjectWebhookSecret.project_id == project_id)
    )


# The hot path's statements, in plain SQL or built once: building an ORM statement and its
# unit of work costs more than running it, and a burst brings a hundred in one second.
_TARGET = text(
    "SELECT p.id, p.slug, s.id AS secret_id, s.secret_encrypted, c.id AS connection_id, c.url"
    " FROM projects p"
    " LEFT JOIN project_webhook_secrets s ON s.project_id = p.id"
    " LEFT JOIN repository_connections c ON c.project_id = p.id"
    " WHERE p.slug = :slug"
).columns(secret_encrypted=LargeBinary())
_INSERT_DELIVERY = insert(WebhookDeliveryIn).returning(WebhookDeliveryIn.id)
_PRUNE_BOUNDARY = (
    select(WebhookDeliveryIn.id)
    .where(WebhookDeliveryIn.project_id == bindparam("project_id"))
    .order_by(WebhookDeliveryIn.id.desc())
    .offset(bindparam("keep"))
    .limit(1)
)
_PRUNE = delete(WebhookDeliveryIn).where(
    WebhookDeliveryIn.project_id == bindparam("project_id"),
    WebhookDeliveryIn.id <= bindparam("boundary"),
)
_SET_OUTCOME = (
    update(WebhookDeliveryIn)
    .where(WebhookDeliveryIn.id == bindparam("record_id"))
    .values(outcome=bindparam("new_outcome"), fetch_run_id=bindparam("new_run_id"))
)


def _prune(db: Connection, project_id: str, keep: int) -> None:
    """Delete the project's deliveries older than its ``keep`` newest."""
    boundary = db.execute(_PRUNE_BOUNDARY, {"project_id": project_id, "keep": keep}).scalar()
    if boundary is not None:
        db.execute(_PRUNE, {"project_id": project_id, "boundary": boundary})


def _received(
    record_id: int,
    provider: Provider,
    received: ReceivedHeaders,
    outcome: str,
    *,
    run: int | None = None,
) -> ReceivedDelivery:
    return ReceivedDelivery(
        record_id=record_id,
        provider=provider.name,
        event=received.event,
        delivery_id=received.delivery_id,
        outcome=outcome,
        fetch_run_id=str(run) if run is not None else None,
    )


def _unauthorized() -> Unauthorized:
    # One answer for an unknown project, a missing secret and a bad signature alike.
    return Unauthorized(
        "webhook_signature_invalid",
        "the request is not signed with this project's webhook secret",
        "sign the body with the project's webhook secret, shown to its admins with its "
        "webhook URLs",
    )


def _delivery_info(row: WebhookDeliveryIn) -> WebhookDeliveryInfo:
    return WebhookDeliveryInfo(
        id=row.id,
        provider=row.provider,
        event=row.event,
        delivery_id=row.delivery_id,
        outcome=row.outcome,
        fetch_run_id=row.fetch_run_id,
        received_at=row.received_at,
    )


def reencrypt_webhook_secrets(session: Session, vault: Vault) -> int:
    """Re-encrypt every project webhook secret not under the current master key."""
    count = 0
    for row in session.scalars(select(ProjectWebhookSecret)):
        if not vault.needs_reencrypt(row.secret_encrypted):
            continue
        record_id = secret_record_id(row.id)
        row.secret_encrypted = vault.encrypt(
            vault.decrypt(row.secret_encrypted, record_id=record_id), record_id=record_id
        )
        count += 1
    session.flush()
    log.info("re-encrypted %d project webhook secrets", count)
    return count
