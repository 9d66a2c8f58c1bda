"""The host API client (``platform/register``) against the built-in host's real HTTP API, and a
stand-in server on loopback where a real host cannot misbehave the way the test needs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from repolink.errors import HostAPIError, ValidationError
from repolink.keys import generate_key
from repolink.platform.register import HostAPI, host_api_from
from repolink.settings import Settings
from support.fixtures import HOST_API_TOKEN
from support.platformkit import WORKSPACE, HostedRepos

URL = f"ssh://git@127.0.0.1:2222/{WORKSPACE}/other.git"


def test_a_key_past_the_first_page_is_found_and_removed(hosted: HostedRepos, host_api: str) -> None:
    api = HostAPI.at(host_api, HOST_API_TOKEN)
    publics = [generate_key().public_key for _ in range(12)]
    keys = [public.openssh_line() for public in publics]
    assert all(api.register_access_key(URL, key, label="paging") for key in keys)
    assert api.register_access_key(URL, keys[-1], label="paging") is False  # idempotent

    # The host API's pages hold 10 keys; the last one added is on the second.
    assert api.remove_access_key(URL, keys[-1]) is True
    assert api.remove_access_key(URL, keys[-1]) is False
    left = {
        key.fingerprint_sha256 for key in hosted.host.service.list_access_keys(WORKSPACE, "other")
    }
    assert publics[-1].sha256_fingerprint not in left
    assert publics[0].sha256_fingerprint in left
    for key in keys[:-1]:
        api.remove_access_key(URL, key)


def test_an_account_key_is_not_taken_for_a_registered_access_key(
    hosted: HostedRepos, host_api: str
) -> None:
    """The built-in host answers 409 for a key that is an account key: that is a refusal, not
    "already there"."""
    key = generate_key().public_key.openssh_line()
    hosted.host.service.add_account_key(WORKSPACE, key, label="a person")
    with pytest.raises(HostAPIError) as refused:
        HostAPI.at(host_api, HOST_API_TOKEN).register_access_key(URL, key, label="machine")
    assert refused.value.code == "host_api_failed"


class _Pages(BaseHTTPRequestHandler):
    """A host API whose key list points its next page at ``next_url``; it records the
    authorization headers it was sent."""

    next_url = ""
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = json.dumps({"values": [], "next": type(self).next_url}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def two_servers() -> Iterator[tuple[str, type[_Pages], type[_Pages]]]:
    own = type("Own", (_Pages,), {"seen": []})
    other = type("Other", (_Pages,), {"seen": []})
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for handler in (own, other)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    own.next_url = f"http://127.0.0.1:{servers[1].server_port}/elsewhere?page=2"
    try:
        yield f"http://127.0.0.1:{servers[0].server_port}/api/2.0", own, other
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_the_token_never_follows_a_next_link_to_another_origin(
    two_servers: tuple[str, type[_Pages], type[_Pages]],
) -> None:
    root, own, other = two_servers
    key = generate_key().public_key.openssh_line()
    assert HostAPI.at(root, "s3cret-token").remove_access_key(URL, key) is False
    assert own.seen == ["Bearer s3cret-token"]
    assert other.seen == []


@pytest.mark.parametrize(
    ("url", "token", "code"),
    [
        (None, "t", "host_api_missing"),
        ("http://127.0.0.1:8081", None, "host_api_missing"),
        ("ftp://127.0.0.1/", "t", "host_api_invalid"),
        ("http://user:hunter2@127.0.0.1:8081", "t", "host_api_invalid"),
    ],
)
def test_a_missing_or_malformed_api_is_refused_naming_the_way_to_give_it(
    url: str | None, token: str | None, code: str
) -> None:
    settings = Settings(host_api_token=token)
    with pytest.raises(ValidationError) as refused:
        host_api_from(settings, url)
    assert refused.value.code == code
    assert "hunter2" not in refused.value.message + refused.value.hint
    if code == "host_api_missing":
        assert "REPOLINK_HOST_API_URL" in refused.value.message + refused.value.hint
        assert "REPOLINK_HOST_API_TOKEN" in refused.value.message + refused.value.hint


def test_the_settings_give_the_api_and_a_bare_address_means_the_built_in_host() -> None:
    settings = Settings(host_api_url="http://127.0.0.1:8081", host_api_token="s3cret-token")
    api = host_api_from(settings, None)
    assert (api.root, api.host) == ("http://127.0.0.1:8081/host/api/2.0", "127.0.0.1:8081")
    assert "s3cret" not in repr(api)
