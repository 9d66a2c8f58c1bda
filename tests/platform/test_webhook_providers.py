"""Each provider's webhook dialect: signature, event, delivery id, and the repository its
payload names (payloads trimmed from the forges' documented examples)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from repolink.platform.webhook_providers import (
    EVENT_IGNORED,
    EVENT_PING,
    EVENT_PUSH,
    PROVIDERS,
    Provider,
    lower_headers,
    parse_payload,
    payload_repositories,
    provider_named,
)
from repolink.repo_urls import repository_address
from repolink.signing import sign_body

SECRET = b"rlwh_the-project-secret"
CONNECTION = "git@forge.example:team/app.git"

PAYLOADS: dict[str, dict[str, Any]] = {
    "bitbucket": {
        "push": {"changes": [{"new": {"type": "branch", "name": "main"}}]},
        "repository": {
            "type": "repository",
            "full_name": "team/app",
            "links": {"html": {"href": "https://forge.example/team/app"}},
        },
    },
    "bitbucket-server": {
        "eventKey": "repo:refs_changed",
        "repository": {"slug": "app", "project": {"key": "TEAM"}},
        "changes": [{"ref": {"id": "refs/heads/main"}, "toHash": "1" * 40}],
    },
    "github": {
        "ref": "refs/heads/main",
        "commits": [{"id": "1" * 40}],
        "repository": {
            "full_name": "team/app",
            "ssh_url": "git@forge.example:team/app.git",
            "clone_url": "https://forge.example/team/app.git",
            "html_url": "https://forge.example/team/app",
        },
    },
    "gitlab": {
        "object_kind": "push",
        "project": {
            "path_with_namespace": "team/app",
            "git_ssh_url": "git@forge.example:team/app.git",
            "git_http_url": "https://forge.example/team/app.git",
        },
    },
    "generic": {"repository": {"url": "ssh://git@forge.example/team/app.git"}},
}

PUSH_HEADERS: dict[str, dict[str, str]] = {
    "bitbucket": {"X-Event-Key": "repo:push", "X-Request-UUID": "d-1", "X-Hook-UUID": "hook"},
    "bitbucket-server": {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "d-1"},
    "github": {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"},
    "gitlab": {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "d-1"},
    "generic": {"X-Repolink-Delivery": "d-1"},
}


def signed(provider: Provider, body: bytes, secret: bytes = SECRET) -> dict[str, str]:
    value = secret.decode() if provider.sends_secret else sign_body(secret, body)
    return lower_headers({provider.signature_header: value})


def body_of(name: str) -> bytes:
    return json.dumps(PAYLOADS[name]).encode()


def test_the_five_providers_are_known_and_nothing_else() -> None:
    assert sorted(PROVIDERS) == ["bitbucket", "bitbucket-server", "generic", "github", "gitlab"]
    assert provider_named("gitea") is None
    assert provider_named("GitHub") is None


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_a_valid_signature_verifies(name: str) -> None:
    provider = PROVIDERS[name]
    body = body_of(name)
    assert provider.verify(SECRET, signed(provider, body), body)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_wrong_missing_truncated_and_changed_signatures_do_not(name: str) -> None:
    provider = PROVIDERS[name]
    body = body_of(name)
    good = signed(provider, body)[provider.signature_header]
    assert not provider.verify(SECRET, signed(provider, body, b"wrong secret"), body)
    assert not provider.verify(SECRET, {}, body)
    assert not provider.verify(SECRET, {provider.signature_header: ""}, body)
    assert not provider.verify(SECRET, {provider.signature_header: good[:-1]}, body)
    changed = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert not provider.verify(SECRET, {provider.signature_header: changed}, body)


@pytest.mark.parametrize("name", sorted(set(PROVIDERS) - {"gitlab"}))
def test_one_changed_byte_of_the_body_fails_an_hmac_provider(name: str) -> None:
    provider = PROVIDERS[name]
    body = body_of(name)
    headers = signed(provider, body)
    assert not provider.verify(SECRET, headers, body.replace(b"app", b"apq", 1))
    assert not provider.verify(SECRET, headers, body + b"\n")


def test_a_signature_under_another_header_name_does_not_count() -> None:
    github = PROVIDERS["github"]
    body = body_of("github")
    # GitHub's legacy SHA-1 header, and Bitbucket's name for the SHA-256 one.
    assert not github.verify(SECRET, {"x-hub-signature": sign_body(SECRET, body)}, body)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_push_headers_read_as_a_push_with_its_delivery_id(name: str) -> None:
    received = PROVIDERS[name].read_headers(lower_headers(PUSH_HEADERS[name]))
    assert received.kind == EVENT_PUSH
    assert received.delivery_id == "d-1"


@pytest.mark.parametrize(
    ("name", "headers", "kind"),
    [
        ("github", {"X-GitHub-Event": "ping"}, EVENT_PING),
        ("github", {"X-GitHub-Event": "pull_request"}, EVENT_IGNORED),
        ("github", {}, EVENT_IGNORED),
        ("gitlab", {"X-Gitlab-Event": "Tag Push Hook"}, EVENT_PUSH),
        ("gitlab", {"X-Gitlab-Event": "Merge Request Hook"}, EVENT_IGNORED),
        ("gitlab", {"X-Gitlab-Event": "push hook"}, EVENT_IGNORED),
        ("bitbucket", {"X-Event-Key": "pullrequest:created"}, EVENT_IGNORED),
        ("bitbucket", {"X-Event-Key": "repo:refs_changed"}, EVENT_IGNORED),
        ("bitbucket-server", {"X-Event-Key": "diagnostics:ping"}, EVENT_PING),
        ("bitbucket-server", {"X-Event-Key": "repo:push"}, EVENT_IGNORED),
        ("generic", {}, EVENT_PUSH),
        ("generic", {"X-Repolink-Event": "ping"}, EVENT_PING),
        ("generic", {"X-Repolink-Event": "deploy"}, EVENT_IGNORED),
    ],
)
def test_events_are_told_apart(name: str, headers: dict[str, str], kind: str) -> None:
    assert PROVIDERS[name].read_headers(lower_headers(headers)).kind == kind


def test_bitbucket_cloud_hook_uuid_is_not_a_delivery_id() -> None:
    received = PROVIDERS["bitbucket"].read_headers(
        lower_headers({"X-Event-Key": "repo:push", "X-Hook-UUID": "the-hook"})
    )
    assert received.delivery_id is None


def test_gitlab_prefers_the_idempotency_key_that_survives_retries() -> None:
    headers = {"X-Gitlab-Event-UUID": "event-uuid", "Idempotency-Key": "retry-stable"}
    received = PROVIDERS["gitlab"].read_headers(lower_headers(headers))
    assert received.delivery_id == "retry-stable"


def test_unprintable_or_overlong_header_text_is_dropped() -> None:
    headers = {"X-GitHub-Event": "push\x1b[2J", "X-GitHub-Delivery": "x" * 129}
    received = PROVIDERS["github"].read_headers(lower_headers(headers))
    assert (received.event, received.kind, received.delivery_id) == ("", EVENT_IGNORED, None)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_payload_names_the_connected_repository(name: str) -> None:
    connection = repository_address(CONNECTION)
    assert connection is not None
    payload = parse_payload(body_of(name), "application/json")
    found = payload_repositories(PROVIDERS[name], payload)
    assert found
    assert any(address.matches(connection) for address in found)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_another_projects_repository_does_not_match(name: str) -> None:
    connection = repository_address("git@forge.example:team/other.git")
    assert connection is not None
    found = payload_repositories(PROVIDERS[name], parse_payload(body_of(name), None))
    assert not any(address.matches(connection) for address in found)


def test_our_own_hosts_push_payload_names_its_ssh_clone_url() -> None:
    payload = {
        "push": {"changes": []},
        "repository": {
            "full_name": "team/app",
            "links": {"clone": [{"name": "ssh", "href": "ssh://git@127.0.0.1:2222/team/app.git"}]},
        },
    }
    found = payload_repositories(PROVIDERS["bitbucket"], payload)
    hosted = repository_address("ssh://git@127.0.0.1:2222/team/app.git")
    elsewhere = repository_address("ssh://git@127.0.0.1:2299/team/app.git")
    assert hosted is not None and elsewhere is not None
    assert any(address.matches(hosted) for address in found)
    assert not any(address.matches(elsewhere) for address in found)


def test_bitbucket_server_clone_links_are_read_when_sent() -> None:
    payload = {
        "repository": {
            "slug": "app",
            "project": {"key": "TEAM"},
            "links": {
                "clone": [
                    {"name": "http", "href": "https://bb.example/scm/team/app.git"},
                    {"name": "ssh", "href": "ssh://git@bb.example:7999/team/app.git"},
                ]
            },
        }
    }
    found = payload_repositories(PROVIDERS["bitbucket-server"], payload)
    assert [(a.host, a.ssh_port, a.path) for a in found] == [("bb.example", 7999, "team/app")]


def test_github_form_encoded_payloads_are_read() -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(PAYLOADS["github"])}).encode()
    payload = parse_payload(body, "application/x-www-form-urlencoded; charset=utf-8")
    assert payload == PAYLOADS["github"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe", None),
        (b"[" * 100_000, "application/json"),
        (b"other=1", "application/x-www-form-urlencoded"),
        (b"payload=%ff", "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_that_is_no_json_object_parses_to_none(body: bytes, content_type: str) -> None:
    assert parse_payload(body, content_type) is None


def test_a_payload_naming_no_repository_gives_no_address() -> None:
    for provider in PROVIDERS.values():
        assert payload_repositories(provider, {"repository": {"links": "nonsense"}}) == []
        assert payload_repositories(provider, None) == []
    assert not PROVIDERS["generic"].names_repository
    assert all(p.names_repository for n, p in PROVIDERS.items() if n != "generic")
