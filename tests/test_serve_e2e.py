"""Issue 11 §8, end to end: a real ``repolink serve`` on port 0, driven over HTTP and git only.

- Create a project → generate its deploy key → add the public half as an access key through
  the host API → connect → the commits are listed → ``git push`` a new commit to the built-in
  host → the commit is listed with no fetch requested (the push queued it).
- SIGTERM during a fetch from a slow peer: exit 0; the next start completes the fetch, and
  the mirror passes ``git fsck``.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from repolink.app import Repolink
from repolink.git.mirrors import MIRRORS_DIR
from repolink.settings import Settings
from support import flowkit
from support.flowkit import SLUG, WAIT, connect_project, hosted_repository, ok, until
from support.platformkit import CountingProxy
from support.servekit import Service, serving_service

TOKEN = "e2e-bootstrap-admin-token"
SETTINGS = {"REPOLINK_ADMIN_TOKEN": TOKEN, "REPOLINK_SHUTDOWN_GRACE": "1"}


def api_client(service: Service) -> httpx.Client:
    return flowkit.api_client(service, TOKEN)


def listed_shas(api: httpx.Client) -> list[str]:
    page = ok(api.get(f"/api/v1/projects/{SLUG}/commits", params={"limit": 50}))
    return [item["sha"] for item in page["items"]]


def fetch_runs(api: httpx.Client) -> list[dict[str, Any]]:
    runs = ok(api.get(f"/api/v1/projects/{SLUG}/fetches"))
    return list(runs["items"] if isinstance(runs, dict) else runs)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with serving_service(tmp_path / "data", SETTINGS) as running:
        yield running


def test_a_push_to_the_built_in_host_is_listed_without_a_fetch(
    service: Service, tmp_path: Path
) -> None:
    with api_client(service) as api:
        pusher, first = hosted_repository(api, service, tmp_path)
        connect_project(api, service, service.ssh_port or 0)
        fetched = ok(api.post(f"/api/v1/projects/{SLUG}/fetch", params={"wait": "true"}))
        assert fetched["errors"] == [], fetched
        assert listed_shas(api)[:2] == first[::-1]
        assert ok(api.get(f"/api/v1/projects/{SLUG}/repository"))["state"] == "ok"
        before = {run["id"] for run in fetch_runs(api)}

        # A push, and nothing else: the commit shows up on its own.
        pushed = pusher.commit("pushed")
        pusher.push()
        until(lambda: listed_shas(api)[0] == pushed, "the pushed commit listed")
        assert listed_shas(api)[:3] == [pushed, *first[::-1]]
        new_runs = [run for run in fetch_runs(api) if run["id"] not in before]
        assert [run["trigger"] for run in new_runs] == ["push"], new_runs


def test_sigterm_during_a_fetch_exits_0_and_the_next_start_completes_it(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    # The relay is on loopback, which only the server's own host may be unless allowed.
    settings = {**SETTINGS, "REPOLINK_ALLOWED_NETWORKS": "127.0.0.1/32"}
    with serving_service(data_dir, settings) as first_start:
        ssh_port = first_start.ssh_port or 0
        # A slow peer: the project reaches the host through a relay the test throttles (and,
        # its URL not being the server's own, no push queues a fetch behind the test's back).
        relay = CountingProxy(ssh_port)
        try:
            with api_client(first_start) as api:
                pusher, _ = hosted_repository(api, first_start, tmp_path)
                connect_project(api, first_start, relay.port)
                fetched = ok(api.post(f"/api/v1/projects/{SLUG}/fetch", params={"wait": "true"}))
                assert fetched["errors"] == [], fetched
                big = pusher.commit("a large file", big=True)
                pusher.push()
                relay.throttle = 0.02  # about 200 KB/s: the fetch takes many seconds
                run = ok(api.post(f"/api/v1/projects/{SLUG}/fetch"), 202)
                relayed = relay.relayed
                until(lambda: relay.relayed > relayed + 256 * 1024, "the pack on its way")
                running = ok(api.get(f"/api/v1/projects/{SLUG}/fetches/{run['id']}"))
                assert running["state"] == "running", running

            first_start.process.send_signal(signal.SIGTERM)
            assert first_start.process.wait(WAIT) == 0
            _, logged = first_start.process.communicate()
            assert "Traceback" not in logged

            with Repolink(Settings(data_dir=data_dir)) as application:
                waiting = application.fetch_requests.get(SLUG, run["id"])
            assert (waiting.state, waiting.attempts) == ("queued", 0)  # cut short, not failed
            mirrors = list((data_dir / MIRRORS_DIR).glob("*.git"))
            assert len(mirrors) == 1
            assert list(mirrors[0].rglob("*.lock")) == []
            relay.throttle = None
            with (
                serving_service(data_dir, settings, ssh_port=ssh_port) as second_start,
                api_client(second_start) as api,
            ):
                # The run waited for this start, which completes it without being asked.
                def finished() -> dict[str, Any] | None:
                    found = ok(api.get(f"/api/v1/projects/{SLUG}/fetches/{run['id']}"))
                    return found if found["state"] in ("done", "failed") else None

                done = until(finished, "the interrupted fetch finished")
                assert done["state"] == "done", done
                assert listed_shas(api)[0] == big
        finally:
            relay.close()
    checked = subprocess.run(
        ["git", f"--git-dir={mirrors[0]}", "fsck", "--full", "--no-dangling"],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert checked.returncode == 0, checked.stderr


def test_a_fetch_from_the_own_host_cut_by_sigterm_is_cancelled_not_failed(
    tmp_path: Path,
) -> None:
    """The fetch reads from this server's own SSH host, through a relay gone quiet that passes
    the host's closing on at once: were SSH closed before the fetch was cancelled, the fetch
    would fail (an attempt counted) well within the grace instead of being cancelled."""
    data_dir = tmp_path / "data"
    settings = {
        **SETTINGS,
        "REPOLINK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "REPOLINK_SHUTDOWN_GRACE": "5",
    }
    with serving_service(data_dir, settings) as service:
        relay = CountingProxy(service.ssh_port or 0)
        try:
            with api_client(service) as api:
                pusher, _ = hosted_repository(api, service, tmp_path)
                connect_project(api, service, relay.port)
                fetched = ok(api.post(f"/api/v1/projects/{SLUG}/fetch", params={"wait": "true"}))
                assert fetched["errors"] == [], fetched
                pusher.commit("one more")
                pusher.push()
                relay.hold = True  # the fetch now waits on the host for as long as it runs
                run = ok(api.post(f"/api/v1/projects/{SLUG}/fetch"), 202)

                def running() -> bool:
                    found = ok(api.get(f"/api/v1/projects/{SLUG}/fetches/{run['id']}"))
                    return bool(found["state"] == "running")

                until(running, "the fetch running")

            service.process.send_signal(signal.SIGTERM)
            assert service.process.wait(WAIT) == 0
            _, logged = service.process.communicate()
            assert "Traceback" not in logged
        finally:
            relay.close()
    with Repolink(Settings(data_dir=data_dir)) as application:
        waiting = application.fetch_requests.get(SLUG, run["id"])
    assert (waiting.state, waiting.attempts) == ("queued", 0), waiting
