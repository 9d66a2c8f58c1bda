"""The pages' live updates across API processes (issue 13 §3), with real processes on one
PostgreSQL database: two ``repolink serve --no-workers`` and one ``repolink worker``. A page
signed in on process A listens (``text/event-stream``) to Manage commits' version and the
Repository page's state; a fetch asked of process B and carried out by the worker reaches A's
streams through PostgreSQL's notifications alone — every timed re-read is pushed out of the
test's reach. Stopped with the streams open, A ends them and exits at once, though its
shutdown grace would let a request run for an hour."""

from __future__ import annotations

from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from support.accountskit import FAST_HASHER, PASSWORD
from support.clusterkit import Cluster, stop
from support.platformkit import HostedRepos, Platform
from support.webkit import EVENT_STREAM, http_signed_in, stream_events

SLUG = "live"
VERSION = f"/ui/projects/{SLUG}/commits/version.json"
STATE = f"/ui/projects/{SLUG}/settings/repository/state"
NEVER = "3600"  # seconds: beyond any wait of the test


def test_a_fetch_through_one_api_process_reaches_the_pages_listening_on_another(
    pg_platform: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    assert pg_platform.connect(SLUG, hosted.app.url(), grant_on="app").ok
    with Repolink(
        pg_platform.settings, store=pg_platform.store, password_hasher=FAST_HASHER
    ) as accounts:
        accounts.users.create(LOCAL_ADMIN, "watcher", password=PASSWORD)
        accounts.access.set_member(LOCAL_ADMIN, SLUG, "watcher", Role.VIEWER)
    timing = {
        "REPOLINK_LIVE_HEARTBEAT": NEVER,
        "REPOLINK_LIVE_POLL_INTERVAL": NEVER,
        "REPOLINK_SHUTDOWN_GRACE": NEVER,
    }
    with Cluster.on(pg_platform, tmp_path / "cluster", timing) as cluster:
        listening, asked = cluster.start_api("api-a"), cluster.start_api("api-b")
        cluster.start_worker("worker-1")
        with (
            http_signed_in(listening.url, "watcher") as pages,
            pages.stream("GET", VERSION, headers=EVENT_STREAM) as versions,
            pages.stream("GET", STATE, headers=EVENT_STREAM) as states,
        ):
            version_events, state_events = stream_events(versions), stream_events(states)
            _, first = next(version_events)
            _, before = next(state_events)
            assert before["state"] == "ok", before
            pushed = hosted.app.commit(SLUG)

            with cluster.client(asked) as api:
                answer = api.post(f"/api/v1/projects/{SLUG}/fetch")
            assert answer.status_code == 202, answer.text
            run_id = answer.json()["id"]

            for name, state in state_events:
                assert name == "state"
                run = state.get("fetch") or {}
                if run.get("id") == run_id and run["finished"]:
                    break
            else:
                pytest.fail(f"the state stream ended before the fetch did: {cluster.logs()}")
            assert (run["state"], run["new_commits"]) == ("done", 1), (state, cluster.logs())
            for name, version in version_events:
                assert name == "version"
                assert version["version"] != first["version"]
                if pushed in pages.get(f"/ui/projects/{SLUG}/commits").text:
                    break
            else:
                pytest.fail(
                    f"the version stream ended before the commit was listed: {cluster.logs()}"
                )

            assert stop(listening.process) == 0, cluster.logs()
            # Both streams end (what they still held is read first): nothing hangs on them.
            assert {name for name, _ in version_events} <= {"version"}
            assert {name for name, _ in state_events} <= {"state"}
