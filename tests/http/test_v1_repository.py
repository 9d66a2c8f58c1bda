"""The platform API's repository connection, fetches and doctor, in process, against the
embedded SSH host: connect with a generated or imported key, fetch (queued, joined, waited
for), the history, the doctor, every error a client can cause — and never a private key in an
answer but the one that asked for it."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.git.mirrors import mirror_path
from repolink.keys import generate_key, parse_private_key
from repolink.settings import Settings
from repolink.store import Store
from support.apikit import (
    CALLERS,
    DEV,
    OWNER,
    ROOT,
    WATCHER,
    PlatformAPI,
    denial,
    may,
    platform_api,
)
from support.platformkit import WORKSPACE, HostedRepos, Platform, granted_key
from support.recording import RecordedRun, RecordingRunner

pytestmark = pytest.mark.databases

P = "/projects/app"


@pytest.fixture
def api(platform: Platform) -> Iterator[PlatformAPI]:
    yield from platform_api(platform.app)


def _error(response: Any) -> dict[str, str]:
    body = response.json()
    assert body["type"] == "error", body
    error: dict[str, str] = body["error"]
    return error


def _grant(hosted: HostedRepos, public_key: str, label: str = "api") -> None:
    hosted.host.service.add_access_key(WORKSPACE, "app", public_key, label=label)


def _pieces(private_openssh: str, public: str) -> list[str]:
    """Every 16-character piece of a private key file's base64 body that is not also a piece of
    its ``public`` key line (an OpenSSH private key file holds the public blob): none may be in
    an answer."""
    body = "".join(line for line in private_openssh.splitlines() if not line.startswith("-----"))
    pieces = {body[i : i + 16] for i in range(0, len(body) - 15)}
    return sorted(piece for piece in pieces if piece not in public)


def _connect(api: PlatformAPI, hosted: HostedRepos, **extra: Any) -> dict[str, Any]:
    """``app`` created and connected to ``team/app`` with a generated key, granted on the host."""
    api.create("app")
    answer: dict[str, Any] = api.ok(
        OWNER, "PUT", f"{P}/repository", json={"url": hosted.app.url(), "generate": {}, **extra}
    )
    _grant(hosted, answer["deploy_key"]["public_key"])
    return answer


def test_connect_with_a_generated_key_then_fetch_and_wait(
    api: PlatformAPI, hosted: HostedRepos, caplog: pytest.LogCaptureFixture
) -> None:
    api.create("app")
    caplog.set_level(logging.DEBUG)

    put = api.call(
        OWNER,
        "PUT",
        f"{P}/repository",
        json={
            "url": hosted.app.url(),
            "generate": {"type": "ecdsa", "bits": 384},
            "return_private_key": True,
        },
    )

    assert put.status_code == 201
    assert put.headers["cache-control"] == "no-store"
    connected = put.json()
    key = connected["deploy_key"]
    assert (key["key_type"], key["bits"], key["origin"]) == (
        "ecdsa-sha2-nistp384",
        384,
        "generated",
    )
    assert key["fingerprint_sha256"].startswith("SHA256:") and key["last_used_at"] is None
    assert (connected["state"], connected["error"], connected["commits"]) == ("unknown", None, 0)
    assert connected["fetch"]["state"] == "queued"
    # The one answer that asked for it carries the private key, in OpenSSH format.
    private = connected["private_key"]
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    parsed = parse_private_key(private).key
    assert parsed.public_key.openssh_line(False) in key["public_key"]

    _grant(hosted, key["public_key"])
    done = api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})

    everything = hosted.app.host_commits("main")
    assert done["errors"] == []
    assert [c["sha"] for c in done["new_commits"]] == everything
    assert done["fetch"]["id"] == connected["fetch"]["id"]  # it joined the queued first fetch
    assert (done["fetch"]["trigger"], done["fetch"]["state"]) == ("connect", "done")
    assert done["fetch"]["new_commits"] == len(everything)

    shown = api.ok(WATCHER, "GET", f"{P}/repository")
    assert (shown["state"], shown["error"], shown["commits"]) == ("ok", None, len(everything))
    assert shown["deploy_key"]["last_used_at"] is not None
    assert "private_key" not in shown
    for caller in (ROOT, OWNER, WATCHER):
        text = api.call(caller, "GET", f"{P}/repository").text
        assert not any(piece in text for piece in _pieces(private, key["public_key"]))
    assert not any(piece in caplog.text for piece in _pieces(private, key["public_key"]))


def test_fetch_queues_and_joins_then_the_history_shows_the_runs(
    api: PlatformAPI, hosted: HostedRepos
) -> None:
    _connect(api, hosted)

    queued = api.call(DEV, "POST", f"{P}/fetch")
    again = api.call(OWNER, "POST", f"{P}/fetch")

    assert queued.status_code == again.status_code == 202
    assert queued.json()["id"] == again.json()["id"]  # joined the waiting run: one fetch
    assert queued.json()["state"] == "queued"
    run_id = queued.json()["id"]
    api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})
    hosted.app.commit("one more")
    newer = api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})
    assert [c["subject"] for c in newer["new_commits"]] == ["one more"]
    assert newer["fetch"]["trigger"] == "api" and newer["fetch"]["actor"] == DEV

    history = api.ok(WATCHER, "GET", f"{P}/fetches")["items"]
    assert [run["id"] for run in history] == [newer["fetch"]["id"], run_id]
    assert [run["new_commits"] for run in history] == [1, len(hosted.app.host_commits()) - 1]
    assert all(run["state"] == "done" and run["duration"] is not None for run in history)
    one = api.ok(WATCHER, "GET", f"{P}/fetches/{run_id}")
    assert one == history[1]
    assert api.ok(WATCHER, "GET", f"{P}/fetches", params={"limit": 1})["items"] == history[:1]
    missing = api.call(WATCHER, "GET", f"{P}/fetches/999999")
    assert (missing.status_code, _error(missing)["code"]) == (404, "fetch_not_found")


def test_the_repository_reads_fetching_while_a_fetch_runs(
    api: PlatformAPI, hosted: HostedRepos, recording: RecordingRunner
) -> None:
    _connect(api, hosted)
    started, release = threading.Event(), threading.Event()

    def hold(record: RecordedRun) -> None:
        # The fetch's first git process waits until the test has looked.
        if record.argv[0] == "git" and not started.is_set():
            started.set()
            assert release.wait(60)

    recording.before_run = hold
    answers: list[Any] = []
    fetching = threading.Thread(
        target=lambda: answers.append(api.call(DEV, "POST", f"{P}/fetch", params={"wait": "true"}))
    )
    fetching.start()
    try:
        assert started.wait(60)
        assert api.ok(WATCHER, "GET", f"{P}/repository")["state"] == "fetching"
        assert api.ok(WATCHER, "GET", f"{P}/fetches")["items"][0]["state"] == "running"
    finally:
        release.set()
        fetching.join(60)
    assert answers[0].status_code == 200 and answers[0].json()["errors"] == []
    assert api.ok(WATCHER, "GET", f"{P}/repository")["state"] == "ok"


def test_a_failed_fetch_answers_its_error_and_sets_the_state(
    api: PlatformAPI, hosted: HostedRepos
) -> None:
    api.create("app")
    api.ok(OWNER, "PUT", f"{P}/repository", json={"url": hosted.app.url(), "generate": {}})

    done = api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})

    assert done["new_commits"] == []
    [error] = done["errors"]
    assert error["code"] == "auth_failed" and error["hint"]
    assert done["fetch"]["error_code"] == "auth_failed"
    shown = api.ok(WATCHER, "GET", f"{P}/repository")
    assert shown["state"] == "failed" and shown["error"]["code"] == "auth_failed"


def test_a_transient_failure_answers_its_error_and_is_retried_later(api: PlatformAPI) -> None:
    api.create("app")
    # Nothing listens on port 1: the connection is refused, which may pass by itself.
    api.ok(
        OWNER,
        "PUT",
        f"{P}/repository",
        json={"url": "ssh://git@127.0.0.1:1/team/app.git", "generate": {}},
    )

    done = api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})

    assert [error["code"] for error in done["errors"]] == ["connection_refused"]
    assert done["fetch"]["state"] == "queued"  # waiting for its retry
    assert api.ok(WATCHER, "GET", f"{P}/repository")["error"]["code"] == "connection_refused"


def test_connect_with_an_imported_key_never_returns_it(
    api: PlatformAPI, hosted: HostedRepos
) -> None:
    api.create("app")
    key = granted_key(hosted.host, "app", "imported")
    private = key.to_openssh(b"secret words").decode()

    put = api.call(
        OWNER,
        "PUT",
        f"{P}/repository",
        json={
            "url": hosted.app.url(),
            "private_key": private,
            "passphrase": "secret words",
            "return_private_key": True,
        },
    )

    assert put.status_code == 201
    assert put.json()["deploy_key"]["origin"] == "imported"
    assert put.json()["private_key"] is None
    assert not any(piece in put.text for piece in _pieces(private, key.public_key.openssh_line()))
    assert "secret words" not in put.text
    done = api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})
    assert done["errors"] == [] and done["new_commits"]


def test_put_again_replaces_the_connection(api: PlatformAPI, hosted: HostedRepos) -> None:
    first = _connect(api, hosted)
    api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})
    old_mirror = mirror_path(api.app.settings, api.app.connections.connection_info("app").id)
    assert old_mirror.exists()

    replaced = api.call(
        OWNER, "PUT", f"{P}/repository", json={"url": hosted.other.url(), "generate": {}}
    )

    assert replaced.status_code == 200
    body = replaced.json()
    assert body["url"] == hosted.other.url() and body["commits"] == 0
    assert body["deploy_key"]["fingerprint_sha256"] != first["deploy_key"]["fingerprint_sha256"]
    assert not old_mirror.exists()


def test_delete_removes_connection_keys_and_mirror(api: PlatformAPI, hosted: HostedRepos) -> None:
    _connect(api, hosted)
    api.ok(DEV, "POST", f"{P}/fetch", params={"wait": "true"})
    mirror = mirror_path(api.app.settings, api.app.connections.connection_info("app").id)

    assert api.call(OWNER, "DELETE", f"{P}/repository").status_code == 204

    assert not mirror.exists()
    for path in ("/repository", "/commits"):
        gone = api.call(OWNER, "GET", f"{P}{path}")
        assert (gone.status_code, _error(gone)["code"]) == (404, "connection_not_found")
    again = api.call(OWNER, "DELETE", f"{P}/repository")
    assert (again.status_code, _error(again)["code"]) == (404, "connection_not_found")
    fetch = api.call(DEV, "POST", f"{P}/fetch")
    assert (fetch.status_code, _error(fetch)["code"]) == (404, "connection_not_found")
    actions = [e.action for e in api.app.audit.entries(LOCAL_ADMIN, project="app").items]
    assert actions[:2] == ["connection.delete", "connection.create"]


def test_doctor_runs_the_checklist(api: PlatformAPI, hosted: HostedRepos) -> None:
    api.create("app")
    api.ok(OWNER, "PUT", f"{P}/repository", json={"url": hosted.app.url(), "generate": {}})

    failing = api.ok(DEV, "GET", f"{P}/doctor")
    assert not failing["ok"]
    assert [(c["name"], c["status"]) for c in failing["checks"]][3:6] == [
        ("host_key", "passed"),
        ("auth", "failed"),
        ("repository", "skipped"),
    ]
    assert failing["checks"][4]["code"] == "auth_failed" and failing["checks"][4]["hint"]

    _grant(hosted, api.ok(DEV, "GET", f"{P}/repository")["deploy_key"]["public_key"])
    passing = api.ok(DEV, "GET", f"{P}/doctor")
    assert passing["ok"] and {c["status"] for c in passing["checks"]} == {"passed"}


# -- errors ---------------------------------------------------------------------------------


KEY = generate_key()


def _key_errors() -> list[tuple[dict[str, Any], str]]:
    key = KEY
    private = key.to_openssh().decode()
    protected = key.to_openssh(b"right").decode()
    url = "ssh://git@127.0.0.1:2/team/app.git"
    return [
        ({"url": "https://bitbucket.org/team/app.git", "generate": {}}, "invalid_url"),
        ({"url": "-oProxyCommand=x:team/app", "generate": {}}, "invalid_url"),
        ({"url": url}, "key_choice_required"),
        ({"url": url, "generate": {}, "private_key": private}, "key_choice_required"),
        ({"url": url, "generate": {"type": "dsa"}}, "key_type_invalid"),
        ({"url": url, "generate": {"type": "rsa", "bits": 1024}}, "key_bits_invalid"),
        ({"url": url, "generate": {}, "passphrase": "x"}, "passphrase_without_key"),
        ({"url": url, "private_key": private[: len(private) // 2]}, "key_missing_footer"),
        ({"url": url, "private_key": key.public_key.openssh_line()}, "key_is_public"),
        ({"url": url, "private_key": protected}, "key_passphrase_required"),
        ({"url": url, "private_key": protected, "passphrase": "wrong"}, "key_wrong_passphrase"),
        ({"url": url, "private_key": "not a key"}, "key_not_a_key"),
        ({"url": url, "private_key": {"nested": private}}, "invalid_request"),
        ({"url": 7, "private_key": private}, "invalid_request"),
        ({"url": url, "private_key": private + "x" * 70_000}, "request_too_large"),
    ]


KEY_ERRORS = _key_errors()


@pytest.mark.parametrize(("body", "code"), KEY_ERRORS, ids=[code for _, code in KEY_ERRORS])
def test_bad_connections_are_named_and_no_key_comes_back(
    api: PlatformAPI, body: dict[str, Any], code: str, caplog: pytest.LogCaptureFixture
) -> None:
    api.create("app")
    caplog.set_level(logging.DEBUG)

    response = api.call(OWNER, "PUT", f"{P}/repository", json=body)

    assert response.status_code in (400, 413)
    assert _error(response)["code"] == code
    secret = body.get("private_key")
    if isinstance(secret, dict):
        secret = secret["nested"]
    if isinstance(secret, str) and "PRIVATE KEY" in secret:
        pieces = _pieces(secret, KEY.public_key.openssh_line())
        assert not any(piece in response.text for piece in pieces)
        assert not any(piece in caplog.text for piece in pieces)
    missing = api.call(OWNER, "GET", f"{P}/repository")
    assert _error(missing)["code"] == "connection_not_found"  # nothing was stored


@pytest.fixture
def strict_api(tmp_path: Path, hosted: HostedRepos) -> Iterator[PlatformAPI]:
    """The API of a server whose network policy allows no private address, with the embedded
    host as its own built-in host."""
    settings = Settings(data_dir=tmp_path / "strict", allowed_networks="")
    with Store.open(settings) as store:
        platform = Platform(settings, store, hosted.host)
        platform.trust_host()
        yield from platform_api(
            platform.app, ssh_url_base=f"ssh://git@127.0.0.1:{hosted.host.port}"
        )


@pytest.mark.parametrize(
    "url",
    [
        "ssh://git@10.0.0.8/team/app.git",
        "git@169.254.169.254:team/app.git",
        "ssh://git@127.0.0.1:2/team/app.git",
        "git@localhost:team/app.git",
    ],
)
def test_private_targets_are_refused_but_the_servers_own_host_is_not(
    strict_api: PlatformAPI, hosted: HostedRepos, url: str
) -> None:
    strict_api.create("app")

    refused = strict_api.call(OWNER, "PUT", f"{P}/repository", json={"url": url, "generate": {}})

    assert (refused.status_code, _error(refused)["code"]) == (400, "repository_url_forbidden")
    own = strict_api.call(
        OWNER, "PUT", f"{P}/repository", json={"url": hosted.app.url(), "generate": {}}
    )
    assert own.status_code == 201


# -- who may do what -------------------------------------------------------------------------

ROUTES: list[tuple[str, str, dict[str, Any] | None, Role]] = [
    ("GET", "/repository", None, Role.VIEWER),
    ("PUT", "/repository", {"url": "git@bitbucket.org:team/app.git", "generate": {}}, Role.ADMIN),
    ("DELETE", "/repository", None, Role.ADMIN),
    ("POST", "/fetch", None, Role.MEMBER),
    ("POST", "/fetch?wait=true", None, Role.MEMBER),
    ("GET", "/fetches", None, Role.VIEWER),
    ("GET", "/fetches/1", None, Role.VIEWER),
    ("GET", "/doctor", None, Role.MEMBER),
]


def test_every_route_refuses_whoever_may_not(api: PlatformAPI, hosted: HostedRepos) -> None:
    connected = _connect(api, hosted)
    for method, path, body, required in ROUTES:
        for caller in CALLERS:
            if may(caller, required):
                continue
            response = api.call(caller, method, P + path, json=body)
            status, code = denial(caller, required)
            assert (response.status_code, _error(response)["code"]) == (status, code), (
                caller,
                method,
                path,
            )
    # Nothing changed: the same key, and the only fetch is the queued first one.
    shown = api.ok(ROOT, "GET", f"{P}/repository")
    assert shown["deploy_key"] == connected["deploy_key"]
    assert [run["id"] for run in api.ok(ROOT, "GET", f"{P}/fetches")["items"]] == [
        connected["fetch"]["id"]
    ]


def test_a_viewer_reads_and_a_member_fetches(api: PlatformAPI, hosted: HostedRepos) -> None:
    _connect(api, hosted)

    assert api.ok(WATCHER, "GET", f"{P}/repository")["url"] == hosted.app.url()
    assert api.ok(WATCHER, "GET", f"{P}/fetches")["items"]
    assert api.call(DEV, "POST", f"{P}/fetch").status_code == 202
    assert api.ok(ROOT, "POST", f"{P}/fetch", params={"wait": "true"})["errors"] == []


def test_fetch_ids_are_bounded_before_the_database(api: PlatformAPI) -> None:
    api.create("app")
    for run_id in ("0", str(2**63), "x"):
        response = api.call(OWNER, "GET", f"{P}/fetches/{run_id}")
        assert (response.status_code, _error(response)["code"]) == (400, "invalid_request")
    assert re.search(r"run_id", _error(api.call(OWNER, "GET", f"{P}/fetches/0"))["message"])
