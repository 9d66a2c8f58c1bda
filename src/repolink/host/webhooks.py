"""Push webhooks out: a Bitbucket-style ``repo:push`` POSTed to every hook of the repository.

A push only *enqueues* deliveries (rows in ``host_hook_deliveries``); a :class:`DeliveryWorker`
sends them, so a slow or dead receiver never holds up a push. Each delivery keeps its exact
body and its ``X-Request-UUID`` across retries; attempts are counted in ``X-Attempt-Number``.
A failed attempt is retried with exponential backoff until the policy's attempts run out.

Several processes may deliver from the same database (the server's worker, and
``repolink host hook deliver`` started after a push in OpenSSH mode): a delivery is *claimed*
by one conditional UPDATE that sets its ``claimed_until`` a lease into the future, so only one
process sends a given attempt, and a claimer that dies is replaced when the lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from repolink import __version__
from repolink.errors import RepolinkError, VaultError
from repolink.host.events import RefUpdate
from repolink.host.hooks import PUSH_EVENT, secret_record_id
from repolink.host.info import RepositoryInfo
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models.hooks import (
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    HostHook,
    HostHookDelivery,
)
from repolink.vault import Vault, load_vault

log = logging.getLogger(__name__)

USER_AGENT = f"repolink-host/{__version__}"
REQUEST_TIMEOUT = 10.0
# How long a claimed delivery is reserved for its claimer; far longer than one request.
CLAIM_LEASE = timedelta(seconds=60)
# A worker also looks for work this often, to pick up what other processes enqueued.
POLL_INTERVAL = 30.0
# After an unexpected failure of a whole pass, wait this long before the next one.
ERROR_BACKOFF = 5.0
MAX_ERROR_LENGTH = 300
_ZERO_HASH = "0" * 40


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing delivery is tried, and how long to wait between attempts."""

    max_attempts: int = 5
    base_delay: float = 10.0
    max_delay: float = 3600.0

    def delay_after(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1, 2, …): base × 2^(attempt-1)."""
        seconds = self.base_delay * (2 ** max(attempt - 1, 0))
        return timedelta(seconds=min(seconds, self.max_delay))


# -- payload --------------------------------------------------------------------------------


def build_push_payload(
    repo: RepositoryInfo,
    updates: Sequence[RefUpdate],
    *,
    ssh_clone_url: str | None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Bitbucket Cloud's ``repo:push`` body for ``updates`` (branches and tags only)."""
    changes = [change for ref in updates if (change := _change(ref)) is not None]
    clone_links = [{"name": "ssh", "href": ssh_clone_url}] if ssh_clone_url else []
    return {
        "push": {"changes": changes},
        "repository": {
            "type": "repository",
            "full_name": repo.full_name,
            "name": repo.slug,
            "uuid": bitbucket_uuid(repo.id),
            "workspace": {"type": "workspace", "slug": repo.workspace},
            "links": {"clone": clone_links},
        },
        "actor": {"type": "user", "display_name": actor or "repolink host"},
    }


def bitbucket_uuid(identifier: str) -> str:
    """An id in Bitbucket's ``{xxxxxxxx-…}`` spelling."""
    try:
        return "{" + str(uuid.UUID(identifier)) + "}"
    except ValueError:
        return "{" + identifier + "}"


def ssh_clone_url(ssh_url_base: str | None, repo: RepositoryInfo) -> str | None:
    """``ssh://git@host:port/ws/slug.git`` from the server's base URL, if it is known."""
    if not ssh_url_base:
        return None
    return f"{ssh_url_base.rstrip('/')}/{repo.ssh_clone_path}"


def encode_payload(payload: dict[str, Any]) -> str:
    """The body as sent: compact ASCII JSON, so its bytes are the same wherever it is read."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def sign_body(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _change(ref: RefUpdate) -> dict[str, Any] | None:
    kind_name = _ref_kind(ref.name)
    if kind_name is None:
        return None
    kind, name = kind_name
    old = _commit(ref.old)
    new = _commit(ref.new)
    if old is None and new is None:
        return None
    return {
        "old": {"type": kind, "name": name, "target": {"type": "commit", "hash": old}}
        if old
        else None,
        "new": {"type": kind, "name": name, "target": {"type": "commit", "hash": new}}
        if new
        else None,
        "created": old is None,
        "closed": new is None,
    }


def _ref_kind(ref: str) -> tuple[str, str] | None:
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            return kind, ref[len(prefix) :]
    return None


def _commit(value: str | None) -> str | None:
    return None if not value or value == _ZERO_HASH else value


# -- queue ----------------------------------------------------------------------------------


def enqueue_push_event(session: Session, repository_id: str, payload: dict[str, Any]) -> list[int]:
    """One pending delivery of ``payload`` per active hook of the repository hearing pushes."""
    body = encode_payload(payload)
    now = utcnow()
    hooks = session.scalars(
        select(HostHook)
        .where(HostHook.repository_id == repository_id, HostHook.active.is_(True))
        .order_by(HostHook.id)
    )
    rows = [
        HostHookDelivery(
            hook_id=hook.id,
            request_uuid=str(uuid.uuid4()),
            event=PUSH_EVENT,
            payload=body,
            status=DELIVERY_PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for hook in hooks
        if PUSH_EVENT in hook.events
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


@dataclass(frozen=True)
class _Claimed:
    """One attempt this process has claimed, with all it needs to send it."""

    delivery_id: int
    hook_id: int
    hook_uuid: str
    url: str
    secret: bytes | None
    event: str
    request_uuid: str
    attempt: int
    body: bytes

    def __repr__(self) -> str:
        # Neither the secret nor the URL (which may carry credentials).
        return f"_Claimed(delivery_id={self.delivery_id}, attempt={self.attempt})"


@dataclass
class DeliveryCounts:
    """What a worker finished: deliveries delivered, and deliveries given up on."""

    delivered: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    status_code: int | None
    error: str | None


class DeliveryWorker:
    """Sends pending webhook deliveries: in the background of a server, or until drained.

    In a server: ``await start()`` once, ``await on_push(repo, updates)`` after every push,
    ``await stop()`` at shutdown. Deliveries left pending by a previous run are sent on start.
    For a one-shot process: ``await drain()``.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        ssh_url_base: str | None = None,
        policy: RetryPolicy | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        concurrency: int = 8,
        keep_per_hook: int = 50,
    ) -> None:
        self._settings = settings
        self._store = store
        self._ssh_url_base = ssh_url_base
        self._policy = policy or RetryPolicy()
        self._request_timeout = request_timeout
        self._concurrency = max(concurrency, 1)
        self._keep_per_hook = max(keep_per_hook, 1)
        self._vault: Vault | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._counts = DeliveryCounts()

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering in the background of the running event loop."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="repolink-webhook-deliveries")

    async def stop(self) -> None:
        """Finish the attempts in flight (bounded by the request timeout), then stop."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self.wake()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self._request_timeout + 5)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    def wake(self) -> None:
        """Look for due deliveries now; safe to call from any thread."""
        loop, event = self._loop, self._wake_event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def on_push(
        self, repo: RepositoryInfo, updates: Sequence[RefUpdate], *, actor: str | None = None
    ) -> None:
        """Enqueue a ``repo:push`` for ``repo``'s hooks and wake the worker; never raises.

        The push has already succeeded when this runs; a webhook problem is logged, never
        turned into a failure of the push.
        """
        try:
            payload = build_push_payload(
                repo, updates, ssh_clone_url=ssh_clone_url(self._ssh_url_base, repo), actor=actor
            )
            if not payload["push"]["changes"]:
                return
            ids = await asyncio.to_thread(self._enqueue, repo.id, payload)
        except Exception:
            log.exception("cannot enqueue webhook deliveries for a push to %s", repo.full_name)
            return
        if ids:
            log.debug("enqueued %d webhook deliveries for %s", len(ids), repo.full_name)
            self.wake()

    async def drain(self) -> DeliveryCounts:
        """Deliver until nothing is pending: every delivery delivered or failed for good."""
        async with self._new_client() as client:
            while True:
                next_due = await self._deliver_due(client)
                if next_due is None:
                    return self._counts
                await asyncio.sleep(_seconds_until(next_due))

    @property
    def counts(self) -> DeliveryCounts:
        """Deliveries this worker finished so far."""
        return self._counts

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake_event is not None
        async with self._new_client() as client:
            while not self._stopping:
                self._wake_event.clear()
                try:
                    next_due = await self._deliver_due(client)
                    wait = POLL_INTERVAL
                    if next_due is not None:
                        wait = min(_seconds_until(next_due), POLL_INTERVAL)
                except Exception:
                    log.exception("webhook delivery pass failed")
                    wait = ERROR_BACKOFF
                if self._stopping:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_event.wait(), timeout=wait)

    async def _deliver_due(self, client: httpx.AsyncClient) -> datetime | None:
        """Send every delivery due now; the time the next pending one is due, if any."""
        while not self._stopping:
            batch = await asyncio.to_thread(self._claim_due, self._concurrency)
            if not batch:
                break
            outcomes = await asyncio.gather(*(self._send(client, item) for item in batch))
            await asyncio.to_thread(self._record, list(zip(batch, outcomes, strict=True)))
        return await asyncio.to_thread(self._next_due)

    def _new_client(self) -> httpx.AsyncClient:
        # No redirects (a receiver must not bounce a signed body elsewhere), no proxies or
        # netrc from the environment: requests go exactly where the admin configured.
        return httpx.AsyncClient(
            timeout=self._request_timeout, follow_redirects=False, trust_env=False
        )

    async def _send(self, client: httpx.AsyncClient, item: _Claimed) -> _Outcome:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Event-Key": item.event,
            "X-Hook-UUID": item.hook_uuid,
            "X-Request-UUID": item.request_uuid,
            "X-Attempt-Number": str(item.attempt),
        }
        if item.secret is not None:
            headers["X-Hub-Signature"] = sign_body(item.secret, item.body)
        try:
            # Streamed and never read: a receiver's answer body is not our business.
            async with client.stream("POST", item.url, content=item.body, headers=headers) as r:
                status = r.status_code
        except Exception as exc:  # any failure of one receiver is that delivery's failure
            return _Outcome(delivered=False, status_code=None, error=_describe(exc))
        if 200 <= status < 300:
            return _Outcome(delivered=True, status_code=status, error=None)
        return _Outcome(delivered=False, status_code=status, error=f"HTTP {status}")

    # -- database (run in a thread) -----------------------------------------------------

    def _enqueue(self, repository_id: str, payload: dict[str, Any]) -> list[int]:
        with self._store.session() as session:
            return enqueue_push_event(session, repository_id, payload)

    def _claim_due(self, limit: int) -> list[_Claimed]:
        now = utcnow()
        with self._store.session() as session:
            candidates = list(
                session.scalars(
                    select(HostHookDelivery.id)
                    .where(_due(now))
                    .order_by(HostHookDelivery.next_attempt_at, HostHookDelivery.id)
                    .limit(limit)
                )
            )
        claimed: list[_Claimed] = []
        for delivery_id in candidates:
            # One short write transaction per claim: it starts with the UPDATE, so two
            # claimers never both hold a read snapshot they then try to write from.
            with self._store.session() as session:
                item = self._claim_one(session, delivery_id, now)
            if item is not None:
                claimed.append(item)
        return claimed

    def _claim_one(self, session: Session, delivery_id: int, now: datetime) -> _Claimed | None:
        # Core UPDATE on the session's connection: its rowcount says whether we won the claim.
        result = session.connection().execute(
            update(HostHookDelivery)
            .where(HostHookDelivery.id == delivery_id, _due(now))
            .values(
                attempts=HostHookDelivery.attempts + 1,
                claimed_until=now + CLAIM_LEASE,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            return None  # another process claimed it first
        row = session.get(HostHookDelivery, delivery_id)
        hook = session.get(HostHook, row.hook_id) if row is not None else None
        if row is None or hook is None:
            return None
        if not hook.active:
            _finish(row, DELIVERY_FAILED, None, "the webhook was deactivated", now)
            self._counts.failed += 1
            return None
        secret = None
        if hook.secret_encrypted is not None:
            try:
                secret = self._decrypt_secret(hook.secret_encrypted, hook.uuid)
            except RepolinkError as exc:
                # Fail closed: a hook with a secret is never sent an unsigned body.
                log.error("webhook %s: cannot decrypt its secret: %s", hook.uuid, exc.one_line())
                _finish(row, DELIVERY_FAILED, None, f"secret unusable: {exc.code}", now)
                self._counts.failed += 1
                return None
        return _Claimed(
            delivery_id=row.id,
            hook_id=hook.id,
            hook_uuid=hook.uuid,
            url=hook.url,
            secret=secret,
            event=row.event,
            request_uuid=row.request_uuid,
            attempt=row.attempts,
            body=row.payload.encode("utf-8"),
        )

    def _record(self, results: Iterable[tuple[_Claimed, _Outcome]]) -> None:
        now = utcnow()
        touched: set[int] = set()
        with self._store.session() as session:
            for item, outcome in results:
                row = session.get(HostHookDelivery, item.delivery_id)
                if row is None:  # the hook was removed meanwhile
                    continue
                touched.add(item.hook_id)
                if outcome.delivered:
                    _finish(row, DELIVERY_DELIVERED, outcome.status_code, None, now)
                    self._counts.delivered += 1
                    log.info("webhook %s: delivery %d delivered", item.hook_uuid, row.id)
                elif row.attempts >= self._policy.max_attempts:
                    _finish(row, DELIVERY_FAILED, outcome.status_code, outcome.error, now)
                    self._counts.failed += 1
                    log.warning(
                        "webhook %s: delivery %d failed after %d attempts (%s)",
                        item.hook_uuid,
                        row.id,
                        row.attempts,
                        outcome.error,
                    )
                else:
                    row.last_response_code = outcome.status_code
                    row.last_error = outcome.error
                    row.next_attempt_at = now + self._policy.delay_after(row.attempts)
                    row.claimed_until = None
                    row.updated_at = now
                    log.info(
                        "webhook %s: delivery %d attempt %d failed (%s); retrying",
                        item.hook_uuid,
                        row.id,
                        row.attempts,
                        outcome.error,
                    )
            session.flush()
            for hook_id in touched:
                self._prune(session, hook_id)

    def _prune(self, session: Session, hook_id: int) -> None:
        """Forget finished deliveries of a hook beyond the newest ``keep_per_hook``."""
        cutoff = session.scalar(
            select(HostHookDelivery.id)
            .where(HostHookDelivery.hook_id == hook_id)
            .order_by(HostHookDelivery.id.desc())
            .offset(self._keep_per_hook)
            .limit(1)
        )
        if cutoff is None:
            return
        session.execute(
            delete(HostHookDelivery)
            .where(
                HostHookDelivery.hook_id == hook_id,
                HostHookDelivery.id <= cutoff,
                HostHookDelivery.status != DELIVERY_PENDING,
            )
            .execution_options(synchronize_session=False)
        )

    def _next_due(self) -> datetime | None:
        """When the next pending delivery that no other process holds is due."""
        now = utcnow()
        with self._store.session() as session:
            return session.scalar(
                select(func.min(HostHookDelivery.next_attempt_at)).where(
                    HostHookDelivery.status == DELIVERY_PENDING, _unclaimed(now)
                )
            )

    def _decrypt_secret(self, token: bytes, hook_uuid: str) -> bytes:
        record_id = secret_record_id(hook_uuid)
        if self._vault is not None:
            try:
                return self._vault.decrypt(token, record_id=record_id)
            except VaultError:
                # The key file may have gained a master key version since it was read.
                self._vault = None
        self._vault = load_vault(self._settings)
        return self._vault.decrypt(token, record_id=record_id)


def _finish(
    row: HostHookDelivery, status: str, code: int | None, error: str | None, now: datetime
) -> None:
    row.status = status
    row.last_response_code = code
    row.last_error = error
    row.next_attempt_at = None
    row.claimed_until = None
    row.updated_at = now


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(HostHookDelivery.claimed_until.is_(None), HostHookDelivery.claimed_until <= now)


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending, due, and not held by another process (or held by one whose lease ran out)."""
    return and_(
        HostHookDelivery.status == DELIVERY_PENDING,
        HostHookDelivery.next_attempt_at <= now,
        _unclaimed(now),
    )


def _seconds_until(moment: datetime) -> float:
    return max((moment - utcnow()).total_seconds(), 0.0)


def _describe(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:MAX_ERROR_LENGTH]


# -- OpenSSH mode ---------------------------------------------------------------------------


def notify_push_from_shell(
    settings: Settings,
    store: Store,
    repo: RepositoryInfo,
    updates: Sequence[RefUpdate],
    *,
    actor: str | None = None,
    ssh_url_base: str | None = None,
) -> list[int]:
    """After a push in OpenSSH mode: enqueue, and leave the sending to a detached process.

    The ``repolink host shell`` process must return to the client at once, so the deliveries
    are sent by ``repolink host hook deliver``, started in a session of its own with no
    standard streams. Problems are logged, never raised: the push has already succeeded.
    """
    try:
        payload = build_push_payload(
            repo, updates, ssh_clone_url=ssh_clone_url(ssh_url_base, repo), actor=actor
        )
        if not payload["push"]["changes"]:
            return []
        with store.session() as session:
            ids = enqueue_push_event(session, repo.id, payload)
    except RepolinkError as exc:
        log.error("cannot enqueue webhook deliveries for %s: %s", repo.full_name, exc.one_line())
        return []
    if ids:
        spawn_deliverer(settings)
    return ids


def spawn_deliverer(settings: Settings) -> None:
    """Start ``repolink host hook deliver`` detached from this process and its terminal."""
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "repolink", "host", "hook", "deliver"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            env=_deliverer_environment(settings),
            cwd=settings.resolved_data_dir,
        )
    except OSError as exc:
        log.error("cannot start the webhook deliverer: %s", exc.strerror or exc)
        return
    # Reaped in the background, so a long-lived caller collects no zombie; a daemon thread
    # does not keep a short-lived caller alive.
    threading.Thread(target=process.wait, name="webhook-deliverer-reaper", daemon=True).start()


def _deliverer_environment(settings: Settings) -> dict[str, str]:
    # The child reads its settings from the environment like any repolink command; this
    # hands it the same data directory and database even when ``settings`` was built in code.
    environment = dict(os.environ)
    environment["REPOLINK_DATA_DIR"] = str(settings.resolved_data_dir)
    if settings.database_url:
        environment["REPOLINK_DATABASE_URL"] = settings.database_url
    if settings.secret_key_file is not None:
        environment["REPOLINK_SECRET_KEY_FILE"] = str(settings.resolved_secret_key_file)
    if settings.secret_key is not None:
        environment["REPOLINK_SECRET_KEY"] = settings.secret_key.get_secret_value()
    return environment
