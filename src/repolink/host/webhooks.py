"""Push webhooks out: a Bitbucket-style ``repo:push`` POSTed to every hook of the repository.

A push only *enqueues* deliveries — jobs of kind ``deliver_webhook``, kept as rows of
``host_hook_deliveries`` by the embedded queue (:mod:`repolink.jobs`) — and a worker sends
them, so a slow or dead receiver never holds up a push. Each delivery keeps its exact body and
its ``X-Request-UUID`` across retries; attempts are counted in ``X-Attempt-Number``. A failed
attempt is retried with exponential backoff until the policy's attempts run out.

Several processes may deliver from the same database (the server's worker, and
``repolink host hook deliver`` started after a push in OpenSSH mode): the queue's claim by
lease makes sure only one of them sends a given attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from repolink import __version__
from repolink.errors import RepolinkError, VaultError
from repolink.git.runner import GitRunner
from repolink.host.delivery_transport import CheckedTransport, TargetForbidden
from repolink.host.events import RefUpdate
from repolink.host.hooks import PUSH_EVENT, secret_record_id
from repolink.host.info import RepositoryInfo
from repolink.jobs import HandlerRegistry, Job, Outcome, RetryPolicy, Worker
from repolink.jobs.detached import spawn_detached
from repolink.jobs.procrastinate_backend import (
    ProcrastinateJobs,
    ProcrastinateWorker,
    TableDispatch,
)
from repolink.jobs.table import JobTable, TableQueue
from repolink.jobs.worker import describe_error
from repolink.netpolicy import NetworkPolicy
from repolink.settings import Settings
from repolink.signing import sign_body
from repolink.store import Store, utcnow
from repolink.store.models.hooks import DELIVERY_DELIVERED, HostHook, HostHookDelivery
from repolink.vault import VaultLoader

log = logging.getLogger(__name__)

DELIVER_WEBHOOK = "deliver_webhook"
USER_AGENT = f"repolink-host/{__version__}"
REQUEST_TIMEOUT = 10.0
KEEP_PER_HOOK = 50
# Bitbucket's bound: a push of 100k refs made a 15.8 MB body, stored once per delivery. A
# receiver only needs to know which repository moved, so the rest is dropped and said so.
MAX_PAYLOAD_CHANGES = 100
MAX_PAYLOAD_CHANGES_BYTES = 48 * 1024
_ZERO_HASH = "0" * 40

__all__ = [
    "DELIVER_WEBHOOK",
    "USER_AGENT",
    "DeliveryCounts",
    "DeliveryWorker",
    "RetryPolicy",
    "WebhookSender",
    "build_push_payload",
    "enqueue_push_event",
    "notify_push_from_shell",
    "sign_body",
    "spawn_deliverer",
]


# -- payload --------------------------------------------------------------------------------


def build_push_payload(
    repo: RepositoryInfo,
    updates: Sequence[RefUpdate],
    *,
    ssh_clone_url: str | None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Bitbucket Cloud's ``repo:push`` body for ``updates`` (branches and tags only).

    At most :data:`MAX_PAYLOAD_CHANGES` changes of :data:`MAX_PAYLOAD_CHANGES_BYTES` in all;
    ``push.truncated`` says whether some were left out.
    """
    changes, truncated = _bounded_changes(updates)
    clone_links = [{"name": "ssh", "href": ssh_clone_url}] if ssh_clone_url else []
    return {
        "push": {"changes": changes, "truncated": truncated},
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


def has_changes(payload: dict[str, Any]) -> bool:
    """Whether a push payload tells of anything (a truncated one always does)."""
    push = payload["push"]
    return bool(push["changes"]) or bool(push.get("truncated"))


def _bounded_changes(updates: Sequence[RefUpdate]) -> tuple[list[dict[str, Any]], bool]:
    changes: list[dict[str, Any]] = []
    size = 0
    for ref in updates:
        change = _change(ref)
        if change is None:
            continue
        size += len(encode_payload(change)) + 1
        if len(changes) >= MAX_PAYLOAD_CHANGES or size > MAX_PAYLOAD_CHANGES_BYTES:
            return changes, True
        changes.append(change)
    return changes, False


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


def delivery_table(keep_per_hook: int = KEEP_PER_HOOK) -> JobTable:
    """Deliveries as jobs: one table, finished ones kept per hook up to ``keep_per_hook``."""
    return JobTable(
        kind=DELIVER_WEBHOOK,
        model=HostHookDelivery,
        done_status=DELIVERY_DELIVERED,
        group_by="hook_id",
        keep=max(keep_per_hook, 1),
    )


def enqueue_push_event(session: Session, repository_id: str, payload: dict[str, Any]) -> list[int]:
    """One pending delivery of ``payload`` per active hook of the repository hearing pushes."""
    body = encode_payload(payload)
    now = utcnow()
    table = delivery_table()
    hooks = session.scalars(
        select(HostHook)
        .where(HostHook.repository_id == repository_id, HostHook.active.is_(True))
        .order_by(HostHook.id)
    )
    rows = [
        table.new_job(
            now, hook_id=hook.id, request_uuid=str(uuid.uuid4()), event=PUSH_EVENT, payload=body
        )
        for hook in hooks
        if PUSH_EVENT in hook.events
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


# -- the handler ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """One attempt's request, with all it needs to be sent."""

    hook_uuid: str
    url: str
    secret: bytes | None
    event: str
    request_uuid: str
    body: bytes

    def __repr__(self) -> str:
        # Neither the secret nor the URL (which may carry credentials).
        return f"_Request(hook_uuid={self.hook_uuid!r})"


class WebhookSender:
    """The ``deliver_webhook`` handler: POSTs one delivery's body, signed with its hook's secret.

    Use it as an async context manager: it holds one HTTP client for all its requests.
    It connects only to addresses ``network_policy`` allows (default: public ones).
    """

    def __init__(
        self,
        store: Store,
        vault: VaultLoader,
        *,
        timeout: float = REQUEST_TIMEOUT,
        network_policy: NetworkPolicy | None = None,
    ):
        self._store = store
        self._vault = vault
        self._timeout = timeout
        self._network_policy = network_policy or NetworkPolicy()
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> WebhookSender:
        # No redirects (a receiver must not bounce a signed body elsewhere), no proxies or
        # netrc from the environment: requests go exactly where the admin configured.
        self._client = httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            transport=CheckedTransport(self._network_policy),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __call__(self, job: Job) -> Outcome:
        loaded = await asyncio.to_thread(self._load, job.id)
        if isinstance(loaded, Outcome):
            return loaded
        return await self._post(loaded, job.attempt)

    def _load(self, delivery_id: int) -> _Request | Outcome:
        """The attempt's request; or, when it must not be sent, the failure that says why."""
        with self._store.session() as session:
            row = session.get(HostHookDelivery, delivery_id)
            hook = session.get(HostHook, row.hook_id) if row is not None else None
            if row is None or hook is None:
                return Outcome.failed("the webhook was removed", transient=False)
            subject = f"webhook {hook.uuid}"
            if not hook.active:
                return _refused("the webhook was deactivated", subject)
            secret = None
            if hook.secret_encrypted is not None:
                try:
                    secret = self._decrypt_secret(hook.secret_encrypted, hook.uuid)
                except RepolinkError as exc:
                    # Fail closed: a hook with a secret is never sent an unsigned body.
                    log.error("%s: cannot decrypt its secret: %s", subject, exc.one_line())
                    return _refused(f"secret unusable: {exc.code}", subject)
            return _Request(
                hook_uuid=hook.uuid,
                url=hook.url,
                secret=secret,
                event=row.event,
                request_uuid=row.request_uuid,
                body=row.payload.encode("utf-8"),
            )

    def _decrypt_secret(self, token: bytes, hook_uuid: str) -> bytes:
        record_id = secret_record_id(hook_uuid)
        try:
            return self._vault().decrypt(token, record_id=record_id)
        except VaultError:
            # The key file may have gained a master key version since it was read.
            return self._vault.reload().decrypt(token, record_id=record_id)

    async def _post(self, request: _Request, attempt: int) -> Outcome:
        client = self._client
        if client is None:
            raise RuntimeError("WebhookSender is used outside 'async with'")
        subject = f"webhook {request.hook_uuid}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Event-Key": request.event,
            "X-Hook-UUID": request.hook_uuid,
            "X-Request-UUID": request.request_uuid,
            "X-Attempt-Number": str(attempt),
        }
        if request.secret is not None:
            headers["X-Hub-Signature"] = sign_body(request.secret, request.body)
        try:
            # Streamed and never read: a receiver's answer body is not our business.
            async with client.stream(
                "POST", request.url, content=request.body, headers=headers
            ) as response:
                status = response.status_code
        except TargetForbidden as exc:
            # Not retried, and said apart from a connect error: no port scan of our network.
            return _refused(f"webhook_url_forbidden: {exc.reason}", subject)
        except Exception as exc:  # any failure of one receiver is that delivery's failure
            return _failed(describe_error(exc), None, subject)
        if 200 <= status < 300:
            return Outcome.done(details={"last_response_code": status}, subject=subject)
        return _failed(f"HTTP {status}", status, subject)


def _failed(error: str, status: int | None, subject: str) -> Outcome:
    return Outcome.failed(error, details={"last_response_code": status}, subject=subject)


def _refused(error: str, subject: str) -> Outcome:
    return Outcome.failed(
        error, transient=False, details={"last_response_code": None}, subject=subject
    )


# -- the worker -----------------------------------------------------------------------------


@dataclass
class DeliveryCounts:
    """What a worker finished: deliveries delivered, and deliveries given up on."""

    delivered: int = 0
    failed: int = 0


class DeliveryWorker:
    """Sends pending webhook deliveries: in the background of a server, or until drained.

    In a server: ``await start()`` once, ``await on_push(repo, updates)`` after every push,
    ``await stop()`` at shutdown. Deliveries left pending by a previous run are sent on start.
    For a one-shot process: ``await drain()``.
    """

    def __init__(
        self,
        store: Store,
        vault: VaultLoader,
        *,
        ssh_url_base: str | None = None,
        policy: RetryPolicy | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        concurrency: int = 8,
        keep_per_hook: int = KEEP_PER_HOOK,
        network_policy: NetworkPolicy | None = None,
        dispatch: TableDispatch | None = None,
        jobs_worker: ProcrastinateWorker | None = None,
        run_jobs: bool = True,
    ) -> None:
        """``dispatch`` (PostgreSQL): deliveries are carried out by procrastinate's workers,
        woken through it, and running means holding this process's ``jobs_worker``.
        ``run_jobs`` false: it only enqueues deliveries, for workers elsewhere."""
        self._run_jobs = run_jobs
        self._store = store
        self._dispatch = dispatch
        self._jobs_worker = jobs_worker
        self._ssh_url_base = ssh_url_base
        self._sender = WebhookSender(
            store, vault, timeout=request_timeout, network_policy=network_policy
        )
        handlers = HandlerRegistry()
        handlers.register(DELIVER_WEBHOOK, self._sender)
        self._worker = Worker(
            TableQueue(store, [delivery_table(keep_per_hook)]),
            handlers,
            policy=policy,
            concurrency=concurrency,
            stop_timeout=request_timeout + 5,
            name="repolink-webhook-deliveries",
        )
        self._running = False

    async def start(self) -> None:
        """Start delivering in the background of the running event loop."""
        if self._running or not self._run_jobs:
            return
        if self._dispatch is None:
            await self._sender.__aenter__()
            await self._worker.start()
        elif self._jobs_worker is not None:
            await self._jobs_worker.start()
        self._running = True

    async def stop(self, grace: float | None = None) -> None:
        """Finish the attempts in flight within ``grace`` seconds (default: bounded by the
        request timeout), then stop; a delivery cut short is sent again on the next start."""
        if not self._running:
            return
        self._running = False
        if self._dispatch is not None:
            if self._jobs_worker is not None:
                await self._jobs_worker.stop(grace)
            return
        try:
            await self._worker.stop(grace)
        finally:
            await self._sender.__aexit__(None, None, None)

    def wake(self) -> None:
        """Look for due deliveries now; safe to call from any thread."""
        self._worker.wake()

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
            if not has_changes(payload):
                return
            ids = await asyncio.to_thread(self._enqueue, repo.id, payload)
        except Exception:
            log.exception("cannot enqueue webhook deliveries for a push to %s", repo.full_name)
            return
        if ids:
            log.debug("enqueued %d webhook deliveries for %s", len(ids), repo.full_name)
            if self._dispatch is not None:
                await asyncio.to_thread(self._dispatch.wake, ids)
            else:
                self.wake()

    async def drain(self) -> DeliveryCounts:
        """Deliver until nothing is pending: every delivery delivered or failed for good."""
        async with self._sender:
            await self._worker.drain()
        return self.counts

    @property
    def counts(self) -> DeliveryCounts:
        """Deliveries this worker finished so far."""
        counts = self._worker.counts
        return DeliveryCounts(delivered=counts.done, failed=counts.failed)

    def _enqueue(self, repository_id: str, payload: dict[str, Any]) -> list[int]:
        with self._store.session() as session:
            return enqueue_push_event(session, repository_id, payload)


def delivery_dispatch(
    jobs: ProcrastinateJobs,
    store: Store,
    vault: VaultLoader,
    *,
    network_policy: NetworkPolicy | None = None,
    policy: RetryPolicy | None = None,
    keep_per_hook: int = KEEP_PER_HOOK,
) -> TableDispatch:
    """Deliveries carried out by procrastinate's workers (PostgreSQL): the task
    ``deliver_webhook`` registered on ``jobs``, each attempt sent by a :class:`WebhookSender`."""
    return TableDispatch(
        jobs,
        TableQueue(store, [delivery_table(keep_per_hook)]),
        DELIVER_WEBHOOK,
        lambda: WebhookSender(store, vault, network_policy=network_policy),
        policy=policy,
    )


# -- OpenSSH mode ---------------------------------------------------------------------------


def notify_push_from_shell(
    settings: Settings,
    store: Store,
    repo: RepositoryInfo,
    updates: Sequence[RefUpdate],
    *,
    runner: GitRunner,
    actor: str | None = None,
    ssh_url_base: str | None = None,
    dispatch: TableDispatch | None = None,
) -> list[int]:
    """After a push in OpenSSH mode: enqueue, and leave the sending to others.

    The ``repolink host shell`` process must return to the client at once. With ``dispatch``
    (PostgreSQL) the deliveries are woken for procrastinate's workers, like a push to the
    built-in SSH host; without, they are sent by ``repolink host hook deliver``, started in a
    session of its own with no standard streams. Problems are logged, never raised: the push
    has already succeeded.
    """
    try:
        payload = build_push_payload(
            repo, updates, ssh_clone_url=ssh_clone_url(ssh_url_base, repo), actor=actor
        )
        if not has_changes(payload):
            return []
        with store.session() as session:
            ids = enqueue_push_event(session, repo.id, payload)
    except RepolinkError as exc:
        log.error("cannot enqueue webhook deliveries for %s: %s", repo.full_name, exc.one_line())
        return []
    if ids and dispatch is not None:
        dispatch.wake(ids)
    elif ids:
        spawn_deliverer(settings, runner=runner)
    return ids


def spawn_deliverer(settings: Settings, *, runner: GitRunner) -> None:
    """Start ``repolink host hook deliver`` detached from this process and its terminal."""
    spawn_detached(settings, ["host", "hook", "deliver"], what="webhook deliverer", runner=runner)
