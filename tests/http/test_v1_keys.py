"""The platform API's key routes, in process, against the embedded SSH host: a project's keys,
rotation (generated and uploaded keys, proven by a real fetch), additional keys, key rules —
every route for every kind of caller, every error a client can cause, the audit entries they
leave, and never a private key in an answer but the one that asked for it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from repolink.auth.principal import Role
from repolink.keys import generate_key, parse_private_key
from support.apikit import (
    CALLERS,
    OWNER,
    ROOT,
    WATCHER,
    PlatformAPI,
    denial,
    may,
    platform_api,
)
from support.platformkit import WORKSPACE, HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases

P = "/projects/app"
PASSPHRASE = "secret words"


class LeakWatch:
    """Every answer a test got, so that the test can check none holds a private key."""

    def __init__(self, api: PlatformAPI) -> None:
        self.api = api
        self.texts: list[str] = []

    def call(self, caller: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.api.call(caller, method, path, **kwargs)
        self.texts.append(response.text)
        return response

    def ok(self, caller: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(caller, method, path, **kwargs)
        assert response.is_success, (response.status_code, response.text)
        return response.json() if response.status_code != 204 else None

    def assert_never_answered(self, private_openssh: str, *, except_in: int = 0) -> None:
        """No answer holds ``private_openssh`` or any 16-character piece of its base64 body
        (``except_in``: the number of answers that asked for it).

        An OpenSSH private key file carries its public key in clear: a piece that is also a
        piece of the public key's line is public, and answers show public keys."""
        public = parse_private_key(private_openssh, PASSPHRASE).key.public_key.openssh_line()
        body = "".join(
            line for line in private_openssh.splitlines() if not line.startswith("-----")
        )
        pieces = {body[i : i + 16] for i in range(len(body) - 15)}
        secret = [piece for piece in pieces if piece not in public]
        assert len(secret) > len(pieces) // 2  # what is checked is most of the key
        holding = [text for text in self.texts if any(piece in text for piece in secret)]
        assert len(holding) == except_in, holding


@pytest.fixture
def api(platform: Platform) -> Iterator[PlatformAPI]:
    yield from platform_api(platform.app)


@pytest.fixture
def watch(api: PlatformAPI) -> LeakWatch:
    return LeakWatch(api)


def _error(response: Any) -> dict[str, str]:
    body = response.json()
    assert body["type"] == "error", body
    error: dict[str, str] = body["error"]
    return error


def _refused(response: Any, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, (response.status_code, response.text)
    error = _error(response)
    assert error["code"] == code, error
    return error


def _connected(api: PlatformAPI, platform: Platform, hosted: HostedRepos) -> None:
    """``app`` made through the API and connected to ``team/app`` (deploy key granted)."""
    api.create("app")
    outcome = platform.connect("app", hosted.app.url(), grant_on="app", create=False)
    assert outcome.error is None


def _audit(api: PlatformAPI) -> list[dict[str, Any]]:
    return list(api.ok(ROOT, "GET", "/audit", params={"limit": 500})["items"])


# -- who may do what -------------------------------------------------------------------------

ROUTES: list[tuple[str, str, Role, dict[str, Any] | None]] = [
    ("GET", "/keys", Role.VIEWER, None),
    ("GET", "/additional-keys", Role.VIEWER, None),
    ("GET", "/key-rules", Role.VIEWER, None),
    ("POST", "/keys/rotate", Role.ADMIN, {}),
    ("POST", "/keys/rotate/abort", Role.ADMIN, None),
    ("POST", "/additional-keys", Role.ADMIN, {"generate": {}}),
    ("DELETE", "/additional-keys/" + "0" * 32, Role.ADMIN, None),
    ("POST", "/key-rules", Role.ADMIN, {"prefix": "git@h:team/", "key": "deploy"}),
    ("DELETE", "/key-rules/" + "0" * 32, Role.ADMIN, None),
]


def test_every_key_route_answers_each_caller_by_role(api: PlatformAPI, platform: Platform) -> None:
    api.create("app")
    api.app.connections.save("app", "git@git.example.com:team/app.git")
    for method, path, required, body in ROUTES:
        for caller in CALLERS:
            response = api.call(caller, method, P + path, json=body)
            if may(caller, required):
                # Allowed through; what the route then answers is its own (tested below).
                assert response.status_code not in (401, 403), (caller, method, path)
                assert response.status_code != 404 or _error(response)["code"] not in (
                    "project_not_found",
                    "not_found",
                ), (caller, method, path)
            else:
                status, code = denial(caller, required)
                _refused(response, status, code)
    # Completing runs a fetch: asked by those who may not, it never gets that far.
    for caller in CALLERS:
        if not may(caller, Role.ADMIN):
            _refused(
                api.call(caller, "POST", f"{P}/keys/rotate/complete"), *denial(caller, Role.ADMIN)
            )


def test_an_anonymous_caller_learns_nothing_from_its_body(api: PlatformAPI) -> None:
    api.create("app")
    for body in ({"generate": "not an object"}, {"private_key": 12}):
        _refused(api.call("anonymous", "POST", f"{P}/keys/rotate", json=body), 401, "unauthorized")
        _refused(
            api.call("anonymous", "POST", f"{P}/additional-keys", json=body), 401, "unauthorized"
        )


# -- a project's keys and their rotation -------------------------------------------------------


def test_rotation_with_a_generated_key_returned_once(
    api: PlatformAPI,
    watch: LeakWatch,
    platform: Platform,
    hosted: HostedRepos,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _connected(api, platform, hosted)
    before = watch.ok(WATCHER, "GET", f"{P}/keys")
    [deploy] = before["items"]
    assert (deploy["use"], deploy["state"], before["pending_rotation"]) == (
        "deploy key",
        "active",
        None,
    )
    assert deploy["last_used_at"] is not None and deploy["age_days"] == 0
    assert deploy["public_key"].startswith("ssh-ed25519 ")
    assert deploy["fingerprint_md5"].startswith("MD5:")

    started = watch.call(
        OWNER,
        "POST",
        f"{P}/keys/rotate",
        json={"generate": {"type": "ecdsa", "bits": 384}, "return_private_key": True},
    )

    assert started.status_code == 201
    assert started.headers["cache-control"] == "no-store"
    body = started.json()
    private = body["private_key"]
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    new = body["new_key"]
    assert parse_private_key(private).key.public_key.sha256_fingerprint == new["fingerprint_sha256"]
    assert (body["state"], body["origin"], new["key_type"], new["bits"]) == (
        "pending",
        "generated",
        "ecdsa-sha2-nistp384",
        384,
    )
    assert body["current_key"]["fingerprint_sha256"] == deploy["fingerprint_sha256"]
    assert body["replaced_key"] is None and body["on_host"] is None

    listed = watch.ok(WATCHER, "GET", f"{P}/keys")
    assert listed["pending_rotation"]["new_key"] == new
    assert [(key["state"], key["use"]) for key in listed["items"]] == [
        ("active", "deploy key"),
        ("pending", "deploy key"),
    ]

    # Not on the repository yet: the proving fetch fails, nothing changes.
    failed = watch.call(OWNER, "POST", f"{P}/keys/rotate/complete")
    error = _refused(failed, 502, "auth_failed")
    assert new["fingerprint_sha256"] in error["message"]
    assert watch.ok(WATCHER, "GET", f"{P}/keys")["pending_rotation"]["new_key"] == new

    hosted.host.service.add_access_key(WORKSPACE, "app", new["public_key"], label="rotated")
    hosted.app.commit("fetched with the rotated key")
    completed = watch.ok(OWNER, "POST", f"{P}/keys/rotate/complete")

    assert completed["state"] == "completed"
    assert completed["deploy_key"]["fingerprint_sha256"] == new["fingerprint_sha256"]
    assert completed["retired_key"]["fingerprint_sha256"] == deploy["fingerprint_sha256"]
    assert completed["fetch"]["new_commits"] == 1
    after = watch.ok(WATCHER, "GET", f"{P}/keys")
    assert after["pending_rotation"] is None
    assert {key["fingerprint_sha256"]: key["state"] for key in after["items"]} == {
        new["fingerprint_sha256"]: "active",
        deploy["fingerprint_sha256"]: "retired",
    }
    watch.assert_never_answered(private, except_in=1)
    watch.texts = [caplog.text]  # and no log line of the whole run
    watch.assert_never_answered(private)

    entries = [entry for entry in _audit(api) if entry["action"].startswith("key.")]
    assert [(e["action"], e["actor"], e["project"], e["target"]) for e in entries] == [
        ("key.rotate_complete", OWNER, "app", new["fingerprint_sha256"]),
        ("key.rotate", OWNER, "app", new["fingerprint_sha256"]),
    ]
    assert entries[0]["details"] == {"retired_key": deploy["fingerprint_sha256"]}
    assert entries[1]["details"]["origin"] == "generated"


def test_rotation_to_an_uploaded_key_never_returns_it(
    api: PlatformAPI, watch: LeakWatch, platform: Platform, hosted: HostedRepos
) -> None:
    _connected(api, platform, hosted)
    mine = granted_key(hosted.host, "app", "uploaded")
    private = mine.to_openssh(PASSPHRASE.encode()).decode()

    started = watch.call(
        ROOT,
        "POST",
        f"{P}/keys/rotate",
        json={"private_key": private, "passphrase": PASSPHRASE, "return_private_key": True},
    )

    assert started.status_code == 201
    body = started.json()
    assert (body["origin"], body["private_key"]) == ("imported", None)
    assert body["new_key"]["fingerprint_sha256"] == mine.public_key.sha256_fingerprint
    assert PASSPHRASE not in started.text
    completed = watch.ok(ROOT, "POST", f"{P}/keys/rotate/complete")
    assert completed["deploy_key"]["fingerprint_sha256"] == mine.public_key.sha256_fingerprint
    again = watch.call(
        ROOT,
        "POST",
        f"{P}/keys/rotate",
        json={"private_key": private, "passphrase": PASSPHRASE},
    )
    _refused(again, 409, "rotation_same_key")
    watch.assert_never_answered(private)
    assert all(PASSPHRASE not in text for text in watch.texts)


def test_rotation_errors(api: PlatformAPI, watch: LeakWatch, platform: Platform) -> None:
    api.create("app")
    _refused(watch.call(OWNER, "POST", f"{P}/keys/rotate"), 404, "connection_not_found")
    listed = watch.ok(WATCHER, "GET", f"{P}/keys")
    assert listed == {"items": [], "pending_rotation": None}
    api.app.connections.save("app", "git@git.example.com:team/app.git")

    first = watch.ok(OWNER, "POST", f"{P}/keys/rotate")  # no body: a new ed25519 key
    assert first["new_key"]["key_type"] == "ssh-ed25519" and first["private_key"] is None
    _refused(watch.call(OWNER, "POST", f"{P}/keys/rotate", json={}), 409, "rotation_pending")
    second = watch.ok(OWNER, "POST", f"{P}/keys/rotate", json={"replace_pending": True})
    assert second["replaced_key"] == first["new_key"]
    aborted = watch.ok(OWNER, "POST", f"{P}/keys/rotate/abort")
    assert aborted["discarded_key"] == second["new_key"]
    for step in ("abort", "complete"):
        _refused(watch.call(OWNER, "POST", f"{P}/keys/rotate/{step}"), 404, "rotation_not_pending")

    key = generate_key().to_openssh().decode()
    refusals = [
        ({"generate": {}, "private_key": key}, "key_choice_required"),
        ({"generate": {"type": "dsa"}}, "key_type_invalid"),
        ({"generate": {"type": "rsa", "bits": 1024}}, "key_bits_invalid"),
        ({"generate": {}, "passphrase": "words"}, "passphrase_without_key"),
        ({"private_key": key[:200]}, "key_missing_footer"),
        ({"private_key": "ssh-ed25519 AAAA"}, "key_is_public"),
        ({"generate": {"bits": "many"}}, "invalid_request"),
    ]
    for body, code in refusals:
        error = _refused(watch.call(OWNER, "POST", f"{P}/keys/rotate", json=body), 400, code)
        assert "words" not in error["message"]
    watch.assert_never_answered(key)
    assert watch.ok(WATCHER, "GET", f"{P}/keys")["pending_rotation"] is None
    actions = [entry["action"] for entry in _audit(api) if entry["project"] == "app"]
    assert actions.count("key.rotate") == 2 and actions.count("key.rotate_abort") == 1


# -- additional keys and key rules ---------------------------------------------------------------


def test_additional_keys_and_key_rules(api: PlatformAPI, watch: LeakWatch) -> None:
    api.create("app")
    deploy = generate_key()
    api.app.connections.save("app", "git@git.example.com:team/app.git", key=deploy)
    uploaded = generate_key("ecdsa")
    private = uploaded.to_openssh().decode()

    made = watch.call(
        OWNER, "POST", f"{P}/additional-keys", json={"generate": {}, "hostname": "github.com"}
    )
    assert made.status_code == 201
    generated = made.json()
    assert (generated["origin"], generated["hostname"]) == ("generated", "github.com")
    assert "private" not in made.text.lower()
    imported = watch.ok(
        OWNER, "POST", f"{P}/additional-keys", json={"private_key": private, "hostname": ""}
    )
    assert (imported["origin"], imported["hostname"]) == ("imported", "")
    assert imported["fingerprint_sha256"] == uploaded.public_key.sha256_fingerprint
    listed = watch.ok(WATCHER, "GET", f"{P}/additional-keys")
    assert [key["id"] for key in listed] == [generated["id"], imported["id"]]
    keys = watch.ok(WATCHER, "GET", f"{P}/keys")["items"]
    assert sorted(key["use"] for key in keys) == ["additional key", "additional key", "deploy key"]

    for body, status, code in [
        ({"private_key": private}, 409, "additional_key_exists"),
        ({"private_key": deploy.to_openssh().decode()}, 409, "additional_key_is_deploy_key"),
        ({}, 400, "key_choice_required"),
        ({"generate": {}, "hostname": "bad host!"}, 400, "host_invalid"),
    ]:
        _refused(watch.call(OWNER, "POST", f"{P}/additional-keys", json=body), status, code)

    rule = watch.call(
        OWNER,
        "POST",
        f"{P}/key-rules",
        json={"prefix": "git@github.com:team/", "key": imported["fingerprint_md5"]},
    )
    assert rule.status_code == 201
    rule_body = rule.json()
    assert (rule_body["prefix"], rule_body["key"]) == (
        "ssh://git@github.com/team",
        imported["fingerprint_sha256"],
    )
    deploy_rule = watch.ok(
        OWNER, "POST", f"{P}/key-rules", json={"prefix": "ssh://git@h/", "key": "deploy"}
    )
    assert deploy_rule["key_fingerprint_sha256"] == deploy.public_key.sha256_fingerprint
    assert [r["id"] for r in watch.ok(WATCHER, "GET", f"{P}/key-rules")] == [
        rule_body["id"],
        deploy_rule["id"],
    ]
    for body, status, code in [
        ({"prefix": "ssh://git@h/", "key": "deploy"}, 409, "key_rule_exists"),
        ({"prefix": "https://h/team/", "key": "deploy"}, 400, "key_rule_prefix_invalid"),
        ({"prefix": "git@h:x/", "key": "not a fingerprint"}, 400, "fingerprint_invalid"),
        ({"prefix": "git@h:x/", "key": "SHA256:" + "A" * 43}, 404, "additional_key_not_found"),
        ({"prefix": "git@h:x/"}, 400, "invalid_request"),
    ]:
        _refused(watch.call(OWNER, "POST", f"{P}/key-rules", json=body), status, code)

    in_use = watch.call(OWNER, "DELETE", f"{P}/additional-keys/{imported['id']}")
    _refused(in_use, 409, "additional_key_in_use")
    assert watch.call(OWNER, "DELETE", f"{P}/key-rules/{rule_body['id']}").status_code == 204
    _refused(
        watch.call(OWNER, "DELETE", f"{P}/key-rules/{rule_body['id']}"), 404, "key_rule_not_found"
    )
    # A rule is named by its prefix too, in any spelling.
    spelled = quote("ssh://git@h:22/", safe="")
    assert watch.call(OWNER, "DELETE", f"{P}/key-rules/{spelled}").status_code == 204
    assert watch.call(OWNER, "DELETE", f"{P}/additional-keys/{imported['id']}").status_code == 204
    _refused(
        watch.call(OWNER, "DELETE", f"{P}/additional-keys/{imported['id']}"),
        404,
        "additional_key_not_found",
    )
    by_fingerprint = quote(generated["fingerprint_sha256"], safe="")
    assert watch.call(OWNER, "DELETE", f"{P}/additional-keys/{by_fingerprint}").status_code == 204
    assert watch.ok(WATCHER, "GET", f"{P}/additional-keys") == []
    watch.assert_never_answered(private)

    entries = [(e["action"], e["target"]) for e in _audit(api) if e["project"] == "app"]
    assert entries[:6] == [
        ("additional_key.delete", generated["fingerprint_sha256"]),
        ("additional_key.delete", imported["fingerprint_sha256"]),
        ("key_rule.delete", "ssh://git@h/"),
        ("key_rule.delete", "ssh://git@github.com/team"),
        ("key_rule.create", "ssh://git@h/"),
        ("key_rule.create", "ssh://git@github.com/team"),
    ]
    assert ("additional_key.create", generated["fingerprint_sha256"]) in entries


def test_another_project_s_keys_are_not_reachable_through_this_one(
    api: PlatformAPI, watch: LeakWatch
) -> None:
    api.create("app")
    api.create("other")
    theirs = watch.ok(OWNER, "POST", "/projects/other/additional-keys", json={"generate": {}})
    rule = watch.ok(
        OWNER, "POST", "/projects/other/key-rules", json={"prefix": "git@h:t/", "key": theirs["id"]}
    )
    _refused(
        watch.call(OWNER, "DELETE", f"{P}/additional-keys/{theirs['id']}"),
        404,
        "additional_key_not_found",
    )
    _refused(watch.call(OWNER, "DELETE", f"{P}/key-rules/{rule['id']}"), 404, "key_rule_not_found")
    assert watch.ok(WATCHER, "GET", "/projects/other/additional-keys")[0]["id"] == theirs["id"]
