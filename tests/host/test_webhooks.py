"""Push webhooks out: payload, signature, retries, retention, restarts — against real receivers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from repolink.app import Repolink
from repolink.errors import ValidationError
from repolink.git.runner import HardenedRunner
from repolink.host.events import RefUpdate
from repolink.host.hooks import DeliveryInfo, HookInfo, HookService
from repolink.host.info import RepositoryInfo
from repolink.host.service import HostService
from repolink.host.webhooks import (
    MAX_PAYLOAD_CHANGES,
    MAX_PAYLOAD_CHANGES_BYTES,
    USER_AGENT,
    DeliveryWorker,
    RetryPolicy,
    build_push_payload,
    enqueue_push_event,
    notify_push_from_shell,
    sign_body,
)
from repolink.netpolicy import NetworkPolicy
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.hooks import HostHook, HostHookDelivery
from repolink.vault import VaultLoader
from support.recording import RecordingRunner

pytestmark = pytest.mark.databases

OLD = "1" * 40
NEW = "2" * 40
SECRET = "s3cret-for-signing"
FAST = RetryPolicy(max_attempts=3, base_delay=0.05)
WAIT = 20.0


# -- a real HTTP receiver -------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An ``http.server`` on 127.0.0.1 answering POSTs with scripted status codes."""

    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    requests: list[Received] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/push"

    def next_status(self) -> int:
        return self.statuses.pop(0) if self.statuses else self.default_status

    def record(self, request: Received) -> None:
        with self.condition:
            self.requests.append(request)
            self.condition.notify_all()

    def wait_for(self, count: int) -> list[Received]:
        with self.condition:
            if not self.condition.wait_for(lambda: len(self.requests) >= count, WAIT):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.record(Received(self.path, dict(self.headers.items()), body))
            status = receiver.next_status()
            self.send_response(status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start(**options: Any) -> Receiver:
        receiver = Receiver(**options)
        server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(receiver))
        receiver.port = server.server_address[1]
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# -- the host -------------------------------------------------------------------------------


@dataclass
class Host:
    settings: Settings
    store: Store
    service: HostService
    hooks: HookService
    repo: RepositoryInfo

    def add_hook(self, url: str, secret: str | None = None) -> HookInfo:
        return self.hooks.add_hook(self.repo.workspace, self.repo.slug, url, secret=secret)

    def deliveries(self, hook: HookInfo) -> list[DeliveryInfo]:
        return self.hooks.list_deliveries(self.repo.workspace, self.repo.slug, hook.uuid)

    def enqueue(self, updates: Sequence[RefUpdate] = (RefUpdate("refs/heads/main", OLD, NEW),)):
        payload = build_push_payload(self.repo, updates, ssh_clone_url=None)
        with self.store.session() as session:
            return enqueue_push_event(session, self.repo.id, payload)

    def worker(self, **options: Any) -> DeliveryWorker:
        options.setdefault("policy", FAST)
        options.setdefault("network_policy", self.settings.network_policy)
        return DeliveryWorker(self.store, VaultLoader(self.settings), **options)


def make_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
    )


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed; hosted repositories are real bare repositories")
    settings = make_settings(tmp_path)
    with Store.open(settings) as store:
        service = HostService(settings, store, runner=HardenedRunner())
        repo = service.create_repository("acme", "widgets")
        yield Host(settings, store, service, HookService(settings, store, service), repo)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def wait_until_async(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def finished(host: Host, hook: HookInfo, count: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        items = host.deliveries(hook)
        return len(items) >= count and all(item.status != "pending" for item in items)

    return check


def run_worker_until(host: Host, worker: DeliveryWorker, hook: HookInfo, push: bool) -> None:
    async def scenario() -> None:
        await worker.start()
        try:
            if push:
                await worker.on_push(host.repo, [RefUpdate("refs/heads/main", OLD, NEW)])
            await wait_until_async(finished(host, hook), "the delivery to finish")
        finally:
            await worker.stop()

    asyncio.run(scenario())


# -- payload --------------------------------------------------------------------------------


def test_push_payload_is_bitbucket_shaped(host: Host) -> None:
    payload = build_push_payload(
        host.repo,
        [
            RefUpdate("refs/heads/main", OLD, NEW),
            RefUpdate("refs/heads/feature/x", None, NEW),
            RefUpdate("refs/tags/v1.0", None, OLD),
            RefUpdate("refs/heads/gone", OLD, None),
            RefUpdate("refs/heads/zeros", "0" * 40, NEW),
            RefUpdate("refs/notes/commits", OLD, NEW),
        ],
        ssh_clone_url="ssh://git@h.example:2222/acme/widgets.git",
    )
    changes = payload["push"]["changes"]
    assert changes[0] == {
        "old": {"type": "branch", "name": "main", "target": {"type": "commit", "hash": OLD}},
        "new": {"type": "branch", "name": "main", "target": {"type": "commit", "hash": NEW}},
        "created": False,
        "closed": False,
    }
    assert changes[1]["old"] is None and changes[1]["created"] is True
    assert changes[1]["new"]["name"] == "feature/x"
    assert changes[2]["new"] == {
        "type": "tag",
        "name": "v1.0",
        "target": {"type": "commit", "hash": OLD},
    }
    assert changes[3]["new"] is None and changes[3]["closed"] is True
    assert changes[4]["old"] is None and changes[4]["created"] is True
    assert len(changes) == 5  # refs/notes/… is neither a branch nor a tag
    repository = payload["repository"]
    assert repository["type"] == "repository"
    assert repository["full_name"] == "acme/widgets"
    assert repository["name"] == "widgets"
    assert repository["uuid"].startswith("{") and repository["uuid"].endswith("}")
    assert repository["links"]["clone"] == [
        {"name": "ssh", "href": "ssh://git@h.example:2222/acme/widgets.git"}
    ]
    assert payload["actor"]["type"] == "user"
    json.dumps(payload)  # serialisable as it is


def test_a_push_of_many_refs_sends_and_stores_a_bounded_payload(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    # 100k refs once made a 15.8 MB body, stored per delivery (issue 10 §3.8).
    receiver = start_receiver()
    hook = host.add_hook(receiver.url)
    tags = [RefUpdate(f"refs/tags/v{number}", None, NEW) for number in range(20_000)]
    worker = host.worker()

    async def scenario() -> None:
        await worker.start()
        try:
            await worker.on_push(host.repo, tags)
            await wait_until_async(finished(host, hook), "the delivery to finish")
        finally:
            await worker.stop()

    asyncio.run(scenario())
    (request,) = receiver.wait_for(1)
    push = json.loads(request.body)["push"]
    assert push["truncated"] is True
    assert len(push["changes"]) == MAX_PAYLOAD_CHANGES
    assert push["changes"][0]["new"]["name"] == "v0"
    assert len(request.body) < 64 * 1024
    with host.store.session() as session:
        (stored,) = session.query(HostHookDelivery).all()
        assert len(stored.payload) == len(request.body)


def test_push_payload_changes_are_bounded_in_bytes_too(host: Host) -> None:
    long_names = [RefUpdate("refs/heads/" + "b" * 1000 + str(n), OLD, NEW) for n in range(60)]
    push = build_push_payload(host.repo, long_names, ssh_clone_url=None)["push"]
    assert push["truncated"] is True
    assert 0 < len(push["changes"]) < 60
    assert len(json.dumps(push["changes"])) <= MAX_PAYLOAD_CHANGES_BYTES
    few = build_push_payload(host.repo, long_names[:3], ssh_clone_url=None)["push"]
    assert few["truncated"] is False and len(few["changes"]) == 3


def test_only_active_hooks_subscribed_to_push_get_a_delivery(host: Host) -> None:
    first = host.add_hook("http://127.0.0.1:9/a")
    host.hooks.add_hook("acme", "widgets", "http://127.0.0.1:9/b", active=False)
    ids = host.enqueue()
    assert len(ids) == 1
    assert [item.id for item in host.deliveries(first)] == ids
    assert host.deliveries(first)[0].status == "pending"


# -- delivery -------------------------------------------------------------------------------


def test_signed_delivery_reaches_a_real_receiver(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver()
    hook = host.add_hook(receiver.url, secret=SECRET)
    run_worker_until(host, host.worker(), hook, push=True)

    (request,) = receiver.wait_for(1)
    assert request.path == "/hooks/push"
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("repolink-host/")
    assert headers["x-event-key"] == "repo:push"
    assert headers["x-hook-uuid"] == hook.uuid
    assert headers["x-attempt-number"] == "1"
    assert len(headers["x-request-uuid"]) == 36
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-hub-signature"], f"sha256={expected}")
    assert sign_body(SECRET.encode(), request.body) == headers["x-hub-signature"]
    # The signature covers the exact bytes: one changed byte no longer verifies.
    tampered = request.body.replace(b"widgets", b"widgetz")
    assert sign_body(SECRET.encode(), tampered) != headers["x-hub-signature"]

    payload = json.loads(request.body)
    (change,) = payload["push"]["changes"]
    assert change["old"]["target"]["hash"] == OLD
    assert change["new"]["target"]["hash"] == NEW
    assert payload["repository"]["full_name"] == "acme/widgets"

    (delivery,) = host.deliveries(hook)
    assert delivery.status == "delivered"
    assert delivery.attempts == 1
    assert delivery.last_response_code == 200
    assert delivery.request_uuid == headers["x-request-uuid"]


def test_without_a_secret_there_is_no_signature(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver()
    hook = host.add_hook(receiver.url)
    run_worker_until(host, host.worker(), hook, push=True)
    (request,) = receiver.wait_for(1)
    assert "x-hub-signature" not in {name.lower() for name in request.headers}
    assert host.deliveries(hook)[0].status == "delivered"


def test_failing_receiver_is_retried_with_the_same_request_uuid(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(statuses=[500, 503])
    hook = host.add_hook(receiver.url, secret=SECRET)
    run_worker_until(host, host.worker(), hook, push=True)

    requests = receiver.wait_for(3)
    assert len(requests) == 3
    headers = [{k.lower(): v for k, v in request.headers.items()} for request in requests]
    assert [h["x-attempt-number"] for h in headers] == ["1", "2", "3"]
    assert len({h["x-request-uuid"] for h in headers}) == 1
    assert len({request.body for request in requests}) == 1
    assert len({h["x-hub-signature"] for h in headers}) == 1
    (delivery,) = host.deliveries(hook)
    assert delivery.status == "delivered"
    assert delivery.attempts == 3
    assert delivery.last_response_code == 200
    assert delivery.last_error is None


def test_always_failing_receiver_ends_failed_after_max_attempts(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(default_status=500)
    hook = host.add_hook(receiver.url)
    run_worker_until(host, host.worker(), hook, push=True)
    assert len(receiver.wait_for(FAST.max_attempts)) == FAST.max_attempts
    (delivery,) = host.deliveries(hook)
    assert delivery.status == "failed"
    assert delivery.attempts == FAST.max_attempts
    assert delivery.last_response_code == 500
    assert delivery.last_error == "HTTP 500"
    assert delivery.next_attempt_at is None


def test_unreachable_receiver_fails_with_an_error_and_no_status(host: Host) -> None:
    hook = host.add_hook("http://127.0.0.1:1/nothing-listens-here")
    run_worker_until(host, host.worker(), hook, push=True)
    (delivery,) = host.deliveries(hook)
    assert delivery.status == "failed"
    assert delivery.last_response_code is None
    assert delivery.last_error


def test_redirects_are_not_followed(host: Host, start_receiver: Callable[..., Receiver]) -> None:
    elsewhere = start_receiver()
    receiver = start_receiver(default_status=302, extra_headers={"Location": elsewhere.url})
    hook = host.add_hook(receiver.url, secret=SECRET)
    run_worker_until(host, host.worker(), hook, push=True)
    assert len(receiver.wait_for(FAST.max_attempts)) == FAST.max_attempts
    assert elsewhere.requests == []
    (delivery,) = host.deliveries(hook)
    assert delivery.status == "failed" and delivery.last_response_code == 302


def test_pending_deliveries_survive_a_restart(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver()
    hook = host.add_hook(receiver.url)
    host.enqueue()  # the push happened while no worker ran
    assert host.deliveries(hook)[0].status == "pending"
    run_worker_until(host, host.worker(), hook, push=False)
    receiver.wait_for(1)
    assert host.deliveries(hook)[0].status == "delivered"


def test_two_workers_never_send_one_attempt_twice(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver()
    hook = host.add_hook(receiver.url)
    for _ in range(12):
        host.enqueue()

    async def both() -> None:
        await asyncio.gather(host.worker(concurrency=2).drain(), host.worker().drain())

    asyncio.run(both())
    uuids = [request.headers["X-Request-UUID"] for request in receiver.requests]
    assert len(uuids) == 12
    assert len(set(uuids)) == 12
    assert {item.status for item in host.deliveries(hook)} == {"delivered"}


def test_old_deliveries_are_pruned(host: Host, start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver()
    hook = host.add_hook(receiver.url)
    ids = [host.enqueue()[0] for _ in range(5)]
    counts = asyncio.run(host.worker(keep_per_hook=3).drain())
    assert counts.delivered == 5
    kept = host.deliveries(hook)
    assert [item.id for item in kept] == sorted(ids, reverse=True)[:3]


def test_drain_returns_when_everything_is_finished(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    good = start_receiver()
    bad = start_receiver(default_status=404)
    good_hook = host.add_hook(good.url)
    bad_hook = host.add_hook(bad.url)
    host.enqueue()
    counts = asyncio.run(host.worker().drain())
    assert (counts.delivered, counts.failed) == (1, 1)
    assert host.deliveries(good_hook)[0].status == "delivered"
    assert host.deliveries(bad_hook)[0].status == "failed"


def test_a_secret_that_does_not_decrypt_fails_closed(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver()
    hook = host.add_hook(receiver.url, secret=SECRET)
    other = host.add_hook("http://127.0.0.1:9/", secret="other")
    with host.store.session() as session:
        rows = {row.uuid: row for row in session.query(HostHook)}
        # A ciphertext moved from another row must not open (it is bound to its hook).
        rows[hook.uuid].secret_encrypted = rows[other.uuid].secret_encrypted
        rows[other.uuid].active = False
    host.enqueue()
    counts = asyncio.run(host.worker().drain())
    assert (counts.delivered, counts.failed) == (0, 1)
    assert receiver.requests == []  # never sent unsigned
    (delivery,) = host.deliveries(hook)
    assert delivery.status == "failed"
    assert delivery.last_error == "secret unusable: vault_decrypt_failed"


def test_push_without_branch_or_tag_changes_enqueues_nothing(host: Host) -> None:
    hook = host.add_hook("http://127.0.0.1:9/")

    async def push_notes() -> None:
        worker = host.worker()
        await worker.start()
        await worker.on_push(host.repo, [RefUpdate("refs/notes/commits", OLD, NEW)])
        await worker.stop()

    asyncio.run(push_notes())
    assert host.deliveries(hook) == []


# -- storage and validation -----------------------------------------------------------------


def test_hook_secret_is_encrypted_at_rest(host: Host) -> None:
    secret = "a-very-recognisable-webhook-secret"
    hook = host.add_hook("https://ci.example/hook", secret=secret)
    assert hook.secret_set
    with host.store.session() as session:
        row = session.query(HostHook).filter_by(uuid=hook.uuid).one()
        assert row.secret_encrypted is not None
        assert secret.encode() not in row.secret_encrypted
    host.store.close()
    data = host.settings.resolved_data_dir
    stored = b"".join(path.read_bytes() for path in data.glob("repolink.db*"))
    assert secret.encode() not in stored


def test_deleting_the_repository_removes_its_hooks_and_deliveries(host: Host) -> None:
    host.add_hook("http://127.0.0.1:9/")
    host.enqueue()
    host.service.delete_repository("acme", "widgets")
    with host.store.session() as session:
        assert session.query(HostHook).count() == 0
        assert session.query(HostHookDelivery).count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "javascript:alert(1)",
        "http:///path-only",
        "https://example.com:notaport/",
        "http://exa mple.com/",
        "http://example.com/\x00",
        "//example.com/",
        "example.com/hook",
        "",
    ],
)
def test_hook_urls_must_be_http_or_https(host: Host, url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        host.add_hook(url)
    assert caught.value.code == "hook_url_invalid"
    if url:
        assert url not in caught.value.message


def test_hook_on_a_forbidden_target_is_refused_when_added(host: Host, tmp_path: Path) -> None:
    strict = make_settings(tmp_path).model_copy(update={"allowed_networks": ""})
    hooks = HookService(strict, host.store, host.service)
    with pytest.raises(ValidationError) as caught:
        hooks.add_hook("acme", "widgets", "http://user:hunter2@0x7f.1:8080/hook")
    assert caught.value.code == "webhook_url_forbidden"
    assert "loopback" in caught.value.message
    assert "hunter2" not in caught.value.one_line()
    assert hooks.list_hooks("acme", "widgets") == []


@pytest.mark.parametrize("spelling", ["127.0.0.1", "localhost"])
def test_delivery_connects_only_to_an_allowed_address(
    host: Host, start_receiver: Callable[..., Receiver], spelling: str
) -> None:
    # Added while loopback was allowed; the worker's policy no longer allows it. The name is
    # judged on the address it resolves to at delivery, and nothing is sent.
    receiver = start_receiver()
    hook = host.add_hook(receiver.url.replace("127.0.0.1", spelling))
    worker = host.worker(network_policy=NetworkPolicy())
    run_worker_until(host, worker, hook, push=True)
    (delivery,) = host.deliveries(hook)
    assert delivery.status == "failed"
    assert delivery.attempts == 1  # refused for good, not retried
    assert (delivery.last_error or "").startswith("webhook_url_forbidden: ")
    assert "loopback" in (delivery.last_error or "")
    assert receiver.requests == []


def test_delivery_to_a_name_reaches_the_allowed_address(
    host: Host, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver()
    hook = host.add_hook(receiver.url.replace("127.0.0.1", "localhost"))
    worker = host.worker(network_policy=NetworkPolicy.from_text("127.0.0.1/32"))
    run_worker_until(host, worker, hook, push=True)
    assert host.deliveries(hook)[0].status == "delivered"
    (request,) = receiver.wait_for(1)
    assert request.headers["Host"] == f"localhost:{receiver.port}"


def test_hook_url_with_credentials_is_not_echoed_in_errors(host: Host) -> None:
    with pytest.raises(ValidationError) as caught:
        host.add_hook("ftp://user:hunter2@example.com/")
    assert "hunter2" not in caught.value.one_line()


# -- OpenSSH mode ---------------------------------------------------------------------------


def test_notify_from_shell_delivers_through_a_detached_process_or_the_workers(
    host: Host, start_receiver: Callable[..., Receiver], database_backend: str
) -> None:
    """SQLite: a detached ``repolink host hook deliver`` sends the delivery. PostgreSQL: it is
    woken for procrastinate's workers, as a push to the built-in SSH host's is, and no process
    is started."""
    receiver = start_receiver()
    hook = host.add_hook(receiver.url, secret=SECRET)
    recording = RecordingRunner()
    with Repolink(host.settings, store=host.store) as app:
        started = time.monotonic()
        ids = notify_push_from_shell(
            host.settings,
            host.store,
            host.repo,
            [RefUpdate("refs/heads/main", OLD, NEW)],
            runner=recording,
            dispatch=app.delivery_dispatch,
        )
        returned_after = time.monotonic() - started
        assert len(ids) == 1
        if database_backend == "postgresql":
            assert recording.records == []
            worker = app.jobs_worker(concurrency=1)
            assert worker is not None

            async def deliver() -> None:
                await worker.start()
                try:
                    await wait_until_async(finished(host, hook), "a worker to deliver")
                finally:
                    await worker.stop()

            asyncio.run(deliver())
        else:
            [spawned] = recording.records
            assert (spawned.kind, spawned.argv[-3:]) == (
                "start_detached",
                ("host", "hook", "deliver"),
            )
    (request,) = receiver.wait_for(1)
    expected = sign_body(SECRET.encode(), request.body)
    assert request.headers["X-Hub-Signature"] == expected
    wait_until(finished(host, hook), "the delivery to be recorded")
    assert host.deliveries(hook)[0].status == "delivered"
    assert returned_after < WAIT  # sanity only: the call did not wait for the receiver


# -- end to end: git push through the embedded SSH server -----------------------------------


def test_git_push_through_the_embedded_server_fires_the_webhook(
    host: Host,
    start_receiver: Callable[..., Receiver],
    make_key: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    for binary in ("git", "ssh", "ssh-keygen"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed; this test pushes with the real one")
    from repolink.ssh.server import start_ssh_server

    receiver = start_receiver()
    hook = host.add_hook(receiver.url, secret=SECRET)
    home = tmp_path / "home"
    home.mkdir()
    pusher = make_key("pusher")  # the host tests' fixture: ssh-keygen at test time
    key = pusher.private_path
    run = _sync_runner(home)
    host.service.add_access_key(
        "acme", "widgets", pusher.public_line, label="pusher", writable=True
    )
    work = tmp_path / "work"
    run("git", "init", "-q", "-b", "main", str(work))
    commits = []
    for number in range(2):
        (work / "file.txt").write_text(f"content {number}\n")
        run("git", "-C", str(work), "add", "file.txt")
        run("git", "-C", str(work), "commit", "-q", "-m", f"commit {number}")
        commits.append(run("git", "-C", str(work), "rev-parse", "HEAD").strip())

    async def scenario() -> list[str]:
        worker = host.worker()
        await worker.start()
        application = Repolink(host.settings, store=host.store)
        server = await start_ssh_server(application, port=0, on_push=worker.on_push)
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text("\n".join(server.known_hosts_lines("127.0.0.1")) + "\n")
        ssh = shlex.join(
            [
                "ssh", "-F", "/dev/null", "-i", str(key),
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes",
            ]
        )  # fmt: skip
        url = f"ssh://git@127.0.0.1:{server.port}/acme/widgets.git"
        outputs = []
        try:
            for commit in commits:
                outputs.append(
                    await _git_async(
                        home, ssh, "-C", str(work), "push", "-q", url, f"{commit}:refs/heads/main"
                    )
                )
                await wait_until_async(
                    lambda: len(receiver.requests) >= len(outputs), "the webhook delivery"
                )
        finally:
            await server.close()
            await worker.stop()
        return outputs

    asyncio.run(scenario())
    first, second = receiver.wait_for(2)
    for request in (first, second):
        assert request.headers["X-Event-Key"] == "repo:push"
        assert request.headers["X-Hub-Signature"] == sign_body(SECRET.encode(), request.body)
    created = json.loads(first.body)["push"]["changes"]
    assert created == [
        {
            "old": None,
            "new": {
                "type": "branch",
                "name": "main",
                "target": {"type": "commit", "hash": commits[0]},
            },
            "created": True,
            "closed": False,
        }
    ]
    updated = json.loads(second.body)["push"]["changes"]
    assert updated[0]["old"]["target"]["hash"] == commits[0]
    assert updated[0]["new"]["target"]["hash"] == commits[1]
    assert updated[0]["created"] is False
    assert {item.status for item in host.deliveries(hook)} == {"delivered"}


def _client_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }


def _sync_runner(home: Path) -> Callable[..., str]:
    def run(*argv: str) -> str:
        result = subprocess.run(
            argv,
            env=_client_env(home),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


async def _git_async(home: Path, ssh_command: str, *args: str) -> str:
    # In the server's own event loop, so git must not block it: an asyncio subprocess.
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        env={**_client_env(home), "GIT_SSH_COMMAND": ssh_command},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode(errors="replace")
    return stdout.decode()
