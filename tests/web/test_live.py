"""The pages' live updates in one process (SQLite and PostgreSQL): the JSON addresses the
scripts read, asked for ``text/event-stream`` on a real uvicorn server, send the commit index's
version and the Repository page's state again when a write elsewhere in the process (SQLite:
the process's own write; PostgreSQL: the database's notification) changes them — with the
re-reads on a timer pushed out of the test's reach, so only the change feed can deliver them;
the pages' access rules hold for the streams as for the JSON. Across API processes:
``tests/web/test_live_processes.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.auth.principal import Role
from repolink.http.service_app import create_service_app
from repolink.settings import Settings
from repolink.store import Store
from support.accountskit import FAST_HASHER, make_account, principal_of
from support.httpkit import serving_app
from support.platformkit import HostedRepos
from support.webcommits import connect_to_app
from support.webkit import EVENT_STREAM, http_signed_in, page_client, signed_in_pages, stream_events

pytestmark = pytest.mark.databases

VERSION = "/ui/projects/acme/commits/version.json"
STATE = "/ui/projects/acme/settings/repository/state"
# Far beyond the test's wait: an update seen came from the change feed, not a timed re-read.
NEVER = 3600.0


@pytest.fixture
def connected(tmp_path: Path, hosted: HostedRepos) -> Iterator[Repolink]:
    settings = Settings(data_dir=tmp_path / "data", live_heartbeat=NEVER, live_poll_interval=NEVER)
    with (
        Store.open(settings) as store,
        Repolink(settings, store=store, password_hasher=FAST_HASHER) as app,
    ):
        owner = make_account(app, "owner")
        make_account(app, "watcher")
        make_account(app, "stranger")
        app.access.create_project(owner.principal, "Acme", slug="acme")
        app.access.set_member(owner.principal, "acme", "watcher", Role.VIEWER)
        connect_to_app(app, settings, store, hosted, "acme")
        yield app


def test_a_hide_in_the_process_reaches_an_open_version_stream(
    connected: Repolink, hosted: HostedRepos
) -> None:
    newest = hosted.app.host_commits("main")[0]
    with (
        serving_app(create_service_app(connected)) as base,
        http_signed_in(base, "watcher") as client,
        client.stream("GET", VERSION, headers=EVENT_STREAM) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        events = stream_events(stream)
        name, first = next(events)
        assert name == "version"
        assert first == client.get(VERSION).json()

        connected.commits.hide_commits("acme", [newest])

        name, second = next(events)
        assert name == "version"
        assert second["version"] != first["version"]
        assert second == client.get(VERSION).json()


def test_a_fetch_queued_in_the_process_reaches_an_open_state_stream_until_access_ends(
    connected: Repolink,
) -> None:
    with (
        serving_app(create_service_app(connected)) as base,
        http_signed_in(base, "watcher") as client,
        client.stream("GET", STATE, headers=EVENT_STREAM) as stream,
    ):
        events = stream_events(stream)
        name, first = next(events)
        assert name == "state"
        assert first == client.get(STATE).json()

        run = connected.fetch_requests.request("acme", trigger="api")

        name, second = next(events)
        assert name == "state"
        assert second["fetch"]["id"] == run.id
        assert second["fetch"]["state"] == "queued"

        connected.access.remove_member(principal_of(connected, "owner"), "acme", "watcher")
        # The next change is read for a stranger: the stream ends instead.
        connected.commits.hide_commits(
            "acme", [connected.commits.list_commits("acme").commits[0].sha]
        )
        assert list(events) == []


def test_the_json_stays_and_the_streams_keep_the_pages_rules(connected: Repolink) -> None:
    with signed_in_pages(connected, "watcher") as pages:
        for address in (VERSION, STATE):
            answer = pages.get(address)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("application/json")
            head = pages.client.head(address, headers=EVENT_STREAM)
            assert head.status_code == 200
            assert head.headers["content-type"].startswith("text/event-stream")
            assert head.content == b""
    with signed_in_pages(connected, "stranger") as pages:
        for address in (VERSION, STATE):
            refused = pages.get(address, headers=EVENT_STREAM)
            assert refused.status_code == 404
            assert refused.headers["content-type"].startswith("text/html")
    with page_client(connected) as pages:
        for address in (VERSION, STATE):
            signed_out = pages.get(address, headers=EVENT_STREAM)
            assert signed_out.status_code == 303
            assert signed_out.headers["location"].startswith("/ui/signin")
