"""platform/webhooks_in: the project's webhook secret, the deliveries it keeps, and what a
request does — refused, ignored, replayed, another repository, or a fetch queued."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, select

from repolink.app import Repolink
from repolink.errors import NotFound, Unauthorized, ValidationError, VaultError
from repolink.platform.fetch_queue import QueuedRun
from repolink.platform.fetch_requests import FetchRunInfo
from repolink.platform.webhooks_in import (
    SECRET_PREFIX,
    WebhookInService,
    secret_record_id,
)
from repolink.settings import Settings
from repolink.signing import sign_body
from repolink.store import Store
from repolink.store.models.fetch_runs import FetchRun
from repolink.store.models.webhooks_in import ProjectWebhookSecret, WebhookDeliveryIn
from repolink.vault import load_vault, token_version

pytestmark = pytest.mark.databases

URL = "ssh://git@forge.example/team/app.git"


@dataclass(frozen=True)
class Run:
    id: int


@pytest.fixture
def app(settings: Settings, store: Store) -> Iterator[Repolink]:
    with Repolink(settings, store=store) as application:
        application.projects.create_project("App", slug="app")
        application.projects.create_project("Other", slug="other")
        application.connections.save("app", URL)
        yield application


@pytest.fixture
def service(app: Repolink) -> WebhookInService:
    return app.webhooks_in


def runs(app: Repolink, slug: str = "app") -> list[tuple[int, str]]:
    """The fetch runs queued for ``slug``: (id, trigger), oldest first."""
    return [(run.id, run.trigger) for run in reversed(app.fetch_requests.history(slug, limit=50))]


def github_push(
    service: WebhookInService,
    secret: str,
    *,
    delivery: str | None = "d-1",
    repository: str = "git@forge.example:team/app.git",
    event: str = "push",
    slug: str = "app",
) -> Any:
    body = json.dumps({"repository": {"ssh_url": repository}, "commits": []}).encode()
    headers = {"X-GitHub-Event": event, "X-Hub-Signature-256": sign_body(secret.encode(), body)}
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return service.receive("github", slug, headers, body)


def outcomes(service: WebhookInService, slug: str = "app") -> list[str]:
    return [delivery.outcome for delivery in service.deliveries(slug)]


# -- the secret ------------------------------------------------------------------------------


def test_the_secret_is_made_on_first_use_and_kept(service: WebhookInService) -> None:
    assert not service.has_secret("app")
    first = service.secret("app")
    assert first.value.startswith(SECRET_PREFIX) and len(first.value) > 40
    assert first.new and service.has_secret("app")
    again = service.secret("app")
    assert (again.value, again.created_at, again.new) == (first.value, first.created_at, False)
    assert service.secret("other").value != first.value
    assert first.value not in repr(first)


def test_the_secret_is_encrypted_and_bound_to_its_row(
    service: WebhookInService, store: Store, settings: Settings
) -> None:
    value = service.secret("app").value
    service.secret("other")
    vault = load_vault(settings)
    with store.session() as session:
        rows = {row.project_id: row for row in session.scalars(select(ProjectWebhookSecret))}
        assert all(value.encode() not in row.secret_encrypted for row in rows.values())
        app_row, other_row = sorted(rows.values(), key=lambda row: row.secret_encrypted)[:2]
        opened = {
            vault.decrypt(row.secret_encrypted, record_id=secret_record_id(row.id))
            for row in (app_row, other_row)
        }
        assert value.encode() in opened
        with pytest.raises(VaultError):
            vault.decrypt(app_row.secret_encrypted, record_id=secret_record_id(other_row.id))


def test_regenerating_makes_the_old_secret_stop_verifying(
    service: WebhookInService, app: Repolink
) -> None:
    old = service.secret("app").value
    new = service.regenerate_secret("app").value
    assert new != old and service.secret("app").value == new
    with pytest.raises(Unauthorized):
        github_push(service, old)
    assert github_push(service, new).queued


def test_a_secret_for_no_project_is_not_found(service: WebhookInService) -> None:
    with pytest.raises(NotFound):
        service.secret("missing")
    with pytest.raises(NotFound):
        service.regenerate_secret("missing")


def test_a_master_key_rotation_reencrypts_the_secrets(
    app: Repolink, service: WebhookInService
) -> None:
    value = service.secret("app").value
    rotation = app.admin.rotate_secret_key()
    assert rotation.version == 2 and rotation.reencrypted >= 2  # the deploy key and the secret
    with app.store.session() as session:
        row = session.scalars(select(ProjectWebhookSecret)).one()
        assert token_version(row.secret_encrypted) == 2
    assert service.secret("app").value == value


# -- receiving -------------------------------------------------------------------------------


def test_a_signed_push_for_the_connected_repository_queues_a_fetch(
    service: WebhookInService, app: Repolink
) -> None:
    received = github_push(service, service.secret("app").value)
    assert (received.outcome, received.delivery_id) == ("queued", "d-1")
    assert runs(app) == [(int(received.fetch_run_id), "webhook")]
    [delivery] = service.deliveries("app")
    assert (delivery.provider, delivery.event, delivery.outcome) == ("github", "push", "queued")
    assert delivery.fetch_run_id == received.fetch_run_id


def test_a_replayed_delivery_id_queues_nothing_more(
    service: WebhookInService, app: Repolink
) -> None:
    secret = service.secret("app").value
    first = github_push(service, secret)
    assert first.queued
    assert github_push(service, secret).outcome == "replayed"
    second = github_push(service, secret, delivery="d-2")
    # A new delivery asks again, and joins the fetch that is still waiting.
    assert second.queued and second.fetch_run_id == first.fetch_run_id
    assert len(runs(app)) == 1
    assert outcomes(service) == ["queued", "replayed", "queued"]


def test_concurrent_copies_of_one_delivery_queue_one_fetch(
    service: WebhookInService, app: Repolink
) -> None:
    secret = service.secret("app").value
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: github_push(service, secret), range(16)))
    assert sorted(r.outcome for r in results) == ["queued"] + ["replayed"] * 15
    assert len(runs(app)) == 1


def test_delivery_ids_are_per_provider(service: WebhookInService) -> None:
    secret = service.secret("app").value
    assert github_push(service, secret).queued
    body = json.dumps({"repository": URL}).encode()
    generic = {
        "X-Repolink-Signature": sign_body(secret.encode(), body),
        "X-Repolink-Delivery": "d-1",
    }
    assert service.receive("generic", "app", generic, body).queued


def test_another_repository_queues_nothing(service: WebhookInService, app: Repolink) -> None:
    secret = service.secret("app").value
    received = github_push(service, secret, repository="git@forge.example:team/other.git")
    assert received.outcome == "other_repository"
    assert runs(app) == []


def test_other_events_and_pings_queue_nothing(service: WebhookInService, app: Repolink) -> None:
    secret = service.secret("app").value
    assert github_push(service, secret, event="issues").outcome == "ignored_event"
    assert github_push(service, secret, event="ping", delivery="d-2").outcome == "ping"
    assert runs(app) == []


def test_a_project_without_connection_queues_nothing(
    service: WebhookInService, app: Repolink
) -> None:
    received = github_push(service, service.secret("other").value, slug="other")
    assert received.outcome == "not_connected"
    assert runs(app) == []


def test_a_signed_push_that_is_not_json_is_invalid_and_recorded(
    service: WebhookInService,
) -> None:
    secret = service.secret("app").value.encode()
    body = b"<xml/>"
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign_body(secret, body)}
    with pytest.raises(ValidationError) as raised:
        service.receive("github", "app", headers, body)
    assert raised.value.code == "webhook_payload_invalid"
    assert outcomes(service) == ["invalid_payload"]


def test_a_generic_post_naming_no_repository_is_a_fetch_now(
    service: WebhookInService, app: Repolink
) -> None:
    secret = service.secret("app").value.encode()
    received = service.receive(
        "generic", "app", {"X-Repolink-Signature": sign_body(secret, b"")}, b""
    )
    assert received.queued and [trigger for _, trigger in runs(app)] == ["webhook"]


def test_without_a_delivery_id_nothing_is_told_a_replay(
    service: WebhookInService, app: Repolink
) -> None:
    secret = service.secret("app").value
    assert github_push(service, secret, delivery=None).queued
    assert github_push(service, secret, delivery=None).queued
    assert outcomes(service) == ["queued", "queued"]


def test_unknown_project_missing_secret_and_bad_signature_answer_alike(
    service: WebhookInService, app: Repolink
) -> None:
    errors = []
    for slug, secret in (("missing", "x"), ("other", "x"), ("app", "wrong"), ("NOT A SLUG", "x")):
        if slug == "app":
            service.secret("app")
        with pytest.raises(Unauthorized) as raised:
            github_push(service, secret, slug=slug)
        errors.append(raised.value.as_dict())
    assert all(error == errors[0] for error in errors)
    assert errors[0]["code"] == "webhook_signature_invalid"
    assert runs(app) == []


def test_a_project_without_secret_records_the_refusal_without_claiming_the_id(
    service: WebhookInService, app: Repolink
) -> None:
    with pytest.raises(Unauthorized):
        github_push(service, "guess", slug="app")
    assert outcomes(service) == ["refused"]
    # The same delivery id, signed once a secret exists, is not a replay.
    assert github_push(service, service.secret("app").value).queued


def test_bad_signatures_leave_no_trace_in_the_history(service: WebhookInService) -> None:
    service.secret("app")
    for _ in range(3):
        with pytest.raises(Unauthorized):
            github_push(service, "wrong")
    assert service.deliveries("app") == []


def test_an_unknown_provider_is_not_found(service: WebhookInService) -> None:
    with pytest.raises(NotFound) as raised:
        service.receive("gitea", "app", {}, b"")
    assert raised.value.code == "webhook_provider_unknown"


def test_a_fetch_that_cannot_be_queued_is_recorded(app: Repolink) -> None:
    class NoConnection:
        """A fetch requests service whose project lost its connection meanwhile."""

        def request_within(
            self, db: Connection, connection_id: str, project_id: str, *, trigger: str
        ) -> QueuedRun | None:
            return None  # no waiting run to be had in the delivery's transaction

        def announce(self, queued: QueuedRun) -> None:
            raise AssertionError("nothing was queued")

        def request(self, project_slug: str, *, trigger: str) -> Run:
            raise NotFound("connection_not_found", "gone", "connect it")

    service = WebhookInService(app.store, app.vault, NoConnection)
    received = github_push(service, service.secret("app").value)
    assert received.outcome == "not_connected"
    assert outcomes(service) == ["not_connected"]


def test_a_connection_removed_while_a_delivery_is_received_is_not_connected(
    app: Repolink,
) -> None:
    """The project read as connected, then its connection gone before the fetch is queued:
    the run's foreign key refuses it, and the delivery is recorded ``not_connected``."""

    class Disconnecting:
        def __init__(self) -> None:
            self.real = app.fetch_requests

        def request_within(
            self, db: Connection, connection_id: str, project_id: str, *, trigger: str
        ) -> QueuedRun | None:
            app.connections.disconnect("app")
            return self.real.request_within(db, connection_id, project_id, trigger=trigger)

        def announce(self, queued: QueuedRun) -> None:
            raise AssertionError("nothing was queued")

        def request(self, project_slug: str, *, trigger: str) -> FetchRunInfo:
            return self.real.request(project_slug, trigger=trigger)

    service = WebhookInService(app.store, app.vault, Disconnecting)
    received = github_push(service, service.secret("app").value)
    assert (received.outcome, received.fetch_run_id) == ("not_connected", None)
    assert outcomes(service) == ["not_connected"]
    with app.store.session() as session:
        assert session.scalars(select(FetchRun)).all() == []


# -- the history -----------------------------------------------------------------------------


def test_the_history_is_bounded_per_project(app: Repolink) -> None:
    service = WebhookInService(app.store, app.vault, lambda: app.fetch_requests, keep=3)
    secret = service.secret("app").value
    for number in range(5):
        github_push(service, secret, delivery=f"d-{number}")
    github_push(service, service.secret("other").value, slug="other")
    assert [d.delivery_id for d in service.deliveries("app")] == ["d-4", "d-3", "d-2"]
    assert len(service.deliveries("other")) == 1


def test_deleting_the_project_deletes_its_secret_and_deliveries(
    app: Repolink, service: WebhookInService
) -> None:
    github_push(service, service.secret("app").value)
    app.projects.delete_project("app")
    with app.store.session() as session:
        assert session.scalars(select(ProjectWebhookSecret)).all() == []
        assert session.scalars(select(WebhookDeliveryIn)).all() == []
