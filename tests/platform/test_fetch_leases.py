"""One thread renews the leases of every fetch run a process carries out: each run's lease
while its block runs, never after, never one that is no longer ours; and again after the
thread went away for want of runs."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from repolink.app import Repolink
from repolink.keys import generate_key
from repolink.platform.connections import create_connection
from repolink.platform.fetch_leases import LeaseKeeper
from repolink.platform.fetch_queue import FETCH_CONNECTION, FetchQueue
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.fetch_runs import FetchRun
from repolink.store.models.platform import KEY_GENERATED
from repolink.urls import parse_ssh_url

pytestmark = pytest.mark.databases

PATIENCE = 30.0  # how long a test waits for what must happen; never what it asserts


class Renewals:
    """A renew function that counts its calls and answers what it is told."""

    def __init__(self, refused: frozenset[int] = frozenset()) -> None:
        self.calls: Counter[int] = Counter()
        self.refused = refused
        self._changed = threading.Condition()

    def __call__(self, run_id: int) -> bool:
        with self._changed:
            self.calls[run_id] += 1
            self._changed.notify_all()
        return run_id not in self.refused

    def wait_for(self, run_id: int, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.calls[run_id] >= count, PATIENCE)


def test_a_kept_run_is_renewed_until_its_block_ends() -> None:
    renewals = Renewals()
    keeper = LeaseKeeper(renewals, interval=0.02)
    with keeper.kept(1):
        renewals.wait_for(1, 2)
    with keeper.kept(2):
        # A renewal of run 1 already under way as its block ended comes before this one.
        renewals.wait_for(2, 1)
        after = renewals.calls[1]
        renewals.wait_for(2, 3)  # the thread went round again since run 1 ended
    assert renewals.calls[1] == after


def test_a_run_no_longer_ours_is_renewed_no_more() -> None:
    renewals = Renewals(refused=frozenset({1}))
    keeper = LeaseKeeper(renewals, interval=0.02)
    with keeper.kept(1), keeper.kept(2):
        renewals.wait_for(2, 3)
        assert renewals.calls[1] == 1


def test_runs_are_renewed_again_after_the_idle_thread_went_away() -> None:
    renewals = Renewals()
    keeper = LeaseKeeper(renewals, interval=0.02, linger=0.01)
    with keeper.kept(1):
        renewals.wait_for(1, 1)
        assert not keeper.idle
    deadline = time.monotonic() + PATIENCE
    while not keeper.idle:  # its own thread, not other keepers' of the same name
        assert time.monotonic() < deadline, "the idle thread did not exit"
        time.sleep(0.01)
    with keeper.kept(2):
        renewals.wait_for(2, 2)


def test_the_queue_renews_the_lease_of_a_run_carried_out_here(
    settings: Settings, store: Store
) -> None:
    app = Repolink(settings, store=store)
    project = app.projects.create_project("Alpha", slug="alpha")
    with store.session() as session:
        connection = create_connection(
            session,
            app.vault(),
            "alpha",
            parse_ssh_url("ssh://git@127.0.0.1:9/team/alpha.git"),
            generate_key(),
            origin=KEY_GENERATED,
        )
    queue = FetchQueue(store, lease=timedelta(seconds=0.3))
    queue.request(connection_id=connection.id, project_id=project.id, trigger="api", actor=None)
    [job] = queue.claim([FETCH_CONNECTION], 1)

    def lease_end() -> object:
        with store.session() as session:
            row = session.get(FetchRun, job.id)
            assert row is not None
            return row.claimed_until

    claimed_until = lease_end()
    with queue.keep_lease(job.id):
        deadline = time.monotonic() + PATIENCE
        while lease_end() == claimed_until and time.monotonic() < deadline:
            time.sleep(0.02)
        renewed = lease_end()
    assert renewed != claimed_until
