"""Fetch history (in process): each run's state, trigger and who asked, its times and new
commits; a failed run's error with the connection's fix; 404 for a stranger."""

from __future__ import annotations

import re

from repolink.app import Repolink
from repolink.auth.principal import Role
from repolink.settings import Settings
from repolink.store import Store
from support.accountskit import make_account
from support.platformkit import HostedRepos, Platform
from support.webcommits import connect_to_app
from support.webkit import signed_in_pages

PAGE = "/ui/projects/acme/settings/fetches"


def _people(app: Repolink) -> None:
    owner = make_account(app, "owner")
    make_account(app, "watcher")
    make_account(app, "stranger")
    app.access.create_project(owner.principal, "Acme", slug="acme")
    app.access.set_member(owner.principal, "acme", "watcher", Role.VIEWER)


def test_runs_newest_first_with_state_trigger_and_new_commits(
    app: Repolink, settings: Settings, store: Store, hosted: HostedRepos
) -> None:
    _people(app)
    connect_to_app(app, settings, store, hosted, "acme")
    first = app.fetch_requests.request_and_wait("acme", trigger="api", actor="owner", timeout=60)
    hosted.app.commit("fetch history page")
    second = app.fetch_requests.request_and_wait("acme", trigger="api", actor="owner", timeout=60)
    assert (first.state, second.state, second.new_commits) == ("done", "done", 1)
    with signed_in_pages(app, "watcher") as pages:
        page = pages.get(PAGE)
    assert page.status_code == 200
    assert re.findall(r'<tr id="run-(\d+)"', page.text) == [str(second.id), str(first.id)]
    row = page.text[page.text.index(f'id="run-{second.id}"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="badge ok">done</span>' in row and "api" in row and "by owner" in row
    assert "New commits: </span>1</td>" in row and row.count("<time datetime=") == 3


def test_a_failed_run_shows_its_error_and_fix(
    app: Repolink, settings: Settings, store: Store, hosted: HostedRepos
) -> None:
    _people(app)
    Platform(settings, store, hosted.host).trust_host()
    # A generated deploy key nobody added on the host: the fetch is refused.
    app.connections.save("acme", hosted.app.url())
    run = app.fetch_requests.request_and_wait("acme", trigger="api", actor="owner", timeout=60)
    assert run.error_code is not None
    hint = app.connections.connection_info("acme").error_hint
    with signed_in_pages(app, "owner") as pages:
        page = pages.get(PAGE).text
    error = page[page.index(f'id="run-{run.id}"') :]
    assert run.error_code in error and "Fix:" in error
    assert hint and hint.replace("'", "&#39;").replace('"', "&#34;")[:40] in error


def test_no_runs_yet_and_a_stranger_gets_404(app: Repolink) -> None:
    _people(app)
    with signed_in_pages(app, "watcher") as pages:
        assert "No fetch has run" in pages.get(PAGE).text
    with signed_in_pages(app, "stranger") as pages:
        assert pages.get(PAGE).status_code == 404
