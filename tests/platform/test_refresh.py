"""RefreshService: `repolink fetch P` with nothing new, decided by plain reads on a live shared
connection without the fetch service or the ORM, and the full fetch for everything else
(issue 10 §2). Against the embedded host, with real git and ssh."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from repolink.errors import NotFound, RepolinkError
from repolink.platform.fetch import FetchService
from repolink.platform.fetch_outcome import STATE_OK
from repolink.platform.refresh import RefreshService
from repolink.store.key_records import mark_used
from repolink.store.models import platform as models
from support.platformkit import (
    HostedRepos,
    Platform,
    close_shared_connection,
    control_socket_of,
    granted_key,
    master_command,
)
from support.recording import RecordingRunner

WHEN = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _refreshes(platform: Platform, fetches: Callable[[], FetchService]) -> RefreshService:
    app = platform.app
    return RefreshService(
        app.settings, app.store, app.vault, fetches, runner=app.runner, clock=lambda: WHEN
    )


def _no_full_fetch() -> FetchService:
    raise AssertionError("the full fetch ran")


def test_a_refresh_with_nothing_new_needs_no_fetch_service_and_records_its_outcome(
    platform: Platform, hosted: HostedRepos
) -> None:
    key = granted_key(hosted.host, "other", "quick")
    platform.connect("quick", hosted.other.url(), key)
    full = platform.fetch("quick")  # the fetch service's own answer to the same no-op
    assert full.skipped

    result = _refreshes(platform, _no_full_fetch).fetch_project("quick")

    assert (result.skipped, result.new_commits, result.removed_commits) == (True, 0, 0)
    assert (result.refs, result.project, result.connection_id) == (
        full.refs,
        full.project,
        full.connection_id,
    )
    info = platform.app.connections.connection_info("quick")
    # Written by stdlib sqlite3, read back by the ORM as what it wrote itself.
    assert (info.state, info.attempted_at, info.fetched_at) == ("ok", WHEN, WHEN)
    assert info.deploy_key.last_used_at == WHEN
    assert STATE_OK == models.STATE_OK


def test_a_later_use_of_the_key_is_kept(platform: Platform, hosted: HostedRepos) -> None:
    platform.connect("kept", hosted.other.url(), granted_key(hosted.host, "other", "kept"))
    key_id = platform.app.connections.connection_info("kept").deploy_key.id
    later = WHEN + timedelta(microseconds=1)
    with platform.store.session() as session:
        mark_used(session, key_id, later)
    assert _refreshes(platform, _no_full_fetch).fetch_project("kept").skipped
    # The plain write compares with the ORM's text: the latest use wins, to the microsecond.
    assert platform.app.connections.connection_info("kept").deploy_key.last_used_at == later


def test_anything_new_or_not_plain_goes_to_the_full_fetch(
    platform: Platform, hosted: HostedRepos
) -> None:
    key = granted_key(hosted.host, "other", "busy")
    platform.connect("busy", hosted.other.url(), key)
    calls: list[str] = []

    def full() -> FetchService:
        calls.append("full")
        return platform.app.fetches

    refreshes = _refreshes(platform, full)
    hosted.other.commit("something new")
    hosted.other.push("main")
    pushed = refreshes.fetch_project("busy")
    assert (pushed.skipped, pushed.new_commits, calls) == (False, 1, ["full"])

    assert refreshes.fetch_project("busy").skipped and calls == ["full"]
    with pytest.raises(NotFound) as missing:
        refreshes.fetch_project("no-such-project")
    assert missing.value.code == "project_not_found"
    assert calls == ["full", "full"]


def _ls_remotes(recording: RecordingRunner) -> int:
    return sum("ls-remote" in record.argv for record in recording.runs())


def test_with_no_live_shared_connection_one_ls_remote_opens_it_for_the_runs_after(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner, tmp_path: Path
) -> None:
    key = granted_key(hosted.host, "other", "cold")
    platform.connect("cold", hosted.other.url(), key)
    fingerprint = key.public_key.sha256_fingerprint
    refreshes = _refreshes(platform, _no_full_fetch)
    close_shared_connection(platform, "cold", fingerprint, tmp_path / "home")
    before = _ls_remotes(recording)

    assert refreshes.fetch_project("cold").skipped  # listed by one ls-remote, no full fetch
    assert _ls_remotes(recording) == before + 1
    assert control_socket_of(platform, "cold").exists()  # that ssh stays as the shared one
    assert refreshes.fetch_project("cold").skipped  # through it: no process at all
    assert _ls_remotes(recording) == before + 1


def test_a_socket_left_by_a_killed_master_is_listed_like_no_connection(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner, tmp_path: Path
) -> None:
    platform.connect("killed", hosted.other.url(), granted_key(hosted.host, "other", "killed"))
    socket_path = control_socket_of(platform, "killed")
    checked = master_command(socket_path, tmp_path / "h", "check")
    found = re.search(r"pid=(\d+)", checked.stderr)
    assert found is not None, checked.stderr
    os.kill(int(found.group(1)), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while master_command(socket_path, tmp_path / "h", "check").returncode == 0:
        assert time.monotonic() < deadline, "the master outlived SIGKILL"
        time.sleep(0.01)
    assert socket_path.exists()  # a killed master cannot remove its socket
    before = _ls_remotes(recording)

    assert _refreshes(platform, _no_full_fetch).fetch_project("killed").skipped
    assert _ls_remotes(recording) == before + 1  # one listing, whose ssh is the new master
    assert master_command(socket_path, tmp_path / "h", "check").returncode == 0


def test_a_cold_listing_that_fails_is_left_to_the_full_fetch_and_not_tried_again_after(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner, tmp_path: Path
) -> None:
    key = granted_key(hosted.host, "other", "revoked")
    platform.connect("revoked", hosted.other.url(), key)
    close_shared_connection(platform, "revoked", key.public_key.sha256_fingerprint, tmp_path / "h")
    hosted.host.service.remove_access_key("team", "other", key.public_key.sha256_fingerprint)
    calls: list[str] = []

    def full() -> FetchService:
        calls.append("full")
        return platform.app.fetches

    refreshes = _refreshes(platform, full)
    before = _ls_remotes(recording)
    with pytest.raises(RepolinkError) as failed:
        refreshes.fetch_project("revoked")
    assert calls == ["full"] and failed.value.code == "auth_failed"
    assert platform.app.connections.connection_info("revoked").state != STATE_OK
    tried = _ls_remotes(recording) - before
    assert tried >= 2  # the shortcut's listing, then the full fetch's own

    with pytest.raises(RepolinkError):
        refreshes.fetch_project("revoked")
    # The recorded failure sends the next run straight to the full fetch: one listing more.
    assert calls == ["full", "full"]
    assert _ls_remotes(recording) - before - tried == tried - 1
