"""Polling with a clock the test moves: off by default; a due connection's fetch is requested
(trigger poll) once per interval, its next poll the interval from then ±10 %; a poll joins a
fetch that waits already; two processes' passes take a poll once."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from repolink.app import Repolink
from repolink.errors import NotFound, ValidationError
from repolink.keys import generate_key
from repolink.platform.connections import create_connection
from repolink.platform.fetch_requests import FetchRequestService
from repolink.platform.fetch_worker import FetchWorker
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.platform import KEY_GENERATED, RepositoryConnection
from repolink.urls import parse_ssh_url

pytestmark = pytest.mark.databases


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, store: Store, clock: Clock) -> Repolink:
    return Repolink(settings, store=store, clock=clock)


def _service(app: Repolink, clock: Clock, seed: int = 1) -> FetchRequestService:
    return FetchRequestService(app.store, app.fetches, clock=clock, rng=random.Random(seed))


def _connected(app: Repolink, slug: str) -> str:
    app.projects.create_project(slug.title(), slug=slug)
    with app.store.session() as session:
        return create_connection(
            session,
            app.vault(),
            slug,
            parse_ssh_url(f"ssh://git@127.0.0.1:9/team/{slug}.git"),
            generate_key(),
            origin=KEY_GENERATED,
        ).id


def _next_poll(app: Repolink, connection_id: str) -> datetime | None:
    with app.store.session() as session:
        row = session.get(RepositoryConnection, connection_id)
        assert row is not None
        return row.next_poll_at


def test_polling_is_off_by_default(app: Repolink, clock: Clock) -> None:
    _connected(app, "quiet")
    service = _service(app, clock)
    clock.advance(60 * 24 * 30)
    assert service.poll_due() == []
    assert app.connections.connection_info("quiet").poll_interval_minutes is None


def test_a_polled_connection_is_fetched_once_per_interval_with_jitter(
    app: Repolink, clock: Clock
) -> None:
    connection_id = _connected(app, "polled")
    service = _service(app, clock)
    start = clock.now

    assert service.set_polling("polled", 10) == 10
    assert app.connections.connection_info("polled").poll_interval_minutes == 10
    first = _next_poll(app, connection_id)
    assert first is not None
    assert start + timedelta(minutes=9) <= first <= start + timedelta(minutes=11)
    assert service.poll_due() == []  # not due yet

    clock.now = first
    [run] = service.poll_due()
    assert (run.trigger, run.state, run.project) == ("poll", "queued", "polled")
    second = _next_poll(app, connection_id)
    assert second is not None
    assert clock.now + timedelta(minutes=9) <= second <= clock.now + timedelta(minutes=11)
    assert service.poll_due() == []  # taken: not again in the same pass

    clock.now = second
    [again] = service.poll_due()
    assert again.id == run.id  # the first poll's fetch still waits: this one joins it


def test_the_jitter_spreads_connections_enabled_together(app: Repolink, clock: Clock) -> None:
    ids = [_connected(app, f"p{number}") for number in range(8)]
    service = _service(app, clock, seed=7)
    for number in range(8):
        service.set_polling(f"p{number}", 60)
    due = {_next_poll(app, connection_id) for connection_id in ids}
    assert len(due) == 8
    for moment in due:
        assert moment is not None
        assert timedelta(minutes=54) <= moment - clock.now <= timedelta(minutes=66)


def test_two_passes_take_a_due_poll_once(app: Repolink, clock: Clock) -> None:
    _connected(app, "shared")
    one, other = _service(app, clock, seed=1), _service(app, clock, seed=2)
    one.set_polling("shared", 5)
    clock.advance(6)

    first = one.poll_due()
    second = other.poll_due()

    assert len(first) == 1 and second == []


def test_turning_polling_off_and_bad_intervals(app: Repolink, clock: Clock) -> None:
    connection_id = _connected(app, "toggled")
    service = _service(app, clock)
    service.set_polling("toggled", 15)
    assert service.set_polling("toggled", 0) is None
    assert _next_poll(app, connection_id) is None
    clock.advance(60)
    assert service.poll_due() == []
    for bad in (-1, 24 * 60 + 1):
        with pytest.raises(ValidationError) as refused:
            service.set_polling("toggled", bad)
        assert refused.value.code == "poll_interval_invalid"
        assert refused.value.context["field"] == "interval"
    app.projects.create_project("Bare", slug="bare")
    with pytest.raises(NotFound) as unconnected:
        service.set_polling("bare", 5)
    assert unconnected.value.code == "connection_not_found"


def test_a_disconnected_project_is_polled_no_more(app: Repolink, clock: Clock) -> None:
    _connected(app, "gone")
    service = _service(app, clock)
    service.set_polling("gone", 5)
    app.connections.disconnect("gone")
    clock.advance(10)
    assert service.poll_due() == []


def test_a_running_worker_makes_the_polling_pass(app: Repolink, clock: Clock) -> None:
    _connected(app, "passed")
    service = _service(app, clock)
    service.set_polling("passed", 5)
    clock.advance(6)

    async def scenario() -> None:
        worker = FetchWorker(service, poll_every=0.05)
        await worker.start()
        try:
            for _ in range(400):
                if await asyncio.to_thread(service.history, "passed"):
                    return
                await asyncio.sleep(0.05)
        finally:
            await worker.stop(grace=0)

    asyncio.run(scenario())
    assert [run.trigger for run in service.history("passed")] == ["poll"]
