"""The platform API's known hosts, in process, against the embedded SSH host: any signed-in
user reads, site admins scan, trust and remove; a trust stores exactly the key named; the
network policy applies to what a client asks the server to scan, except its own SSH host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repolink.app import Repolink
from repolink.keys import generate_key
from repolink.settings import Settings
from repolink.store import Store
from support.apikit import CALLERS, OWNER, ROOT, STRANGER, PlatformAPI, platform_api
from support.platformkit import HostedRepos

pytestmark = pytest.mark.databases

K = "/known-hosts"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[PlatformAPI]:
    """A platform that trusts no host yet; the tests' settings allow loopback targets."""
    settings = Settings(data_dir=tmp_path / "platform")
    with Store.open(settings) as store:
        yield from platform_api(Repolink(settings, store=store))


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


def test_any_signed_in_user_reads_only_site_admins_write(api: PlatformAPI) -> None:
    for caller in CALLERS:
        listed = api.call(caller, "GET", K)
        if caller == "anonymous":
            _refused(listed, 401, "unauthorized")
            continue
        assert listed.status_code == 200
        shipped = [key for key in listed.json() if key["source"] == "shipped"]
        assert {key["host"] for key in shipped} == {"bitbucket.org", "github.com", "gitlab.com"}
        assert all(key["id"] is None for key in shipped)
    writes = [
        ("POST", f"{K}/scan", {"host": "github.com"}),
        ("POST", K, {"host": "github.com", "fingerprint": "SHA256:" + "A" * 43}),
        ("DELETE", f"{K}/1", None),
    ]
    for method, path, body in writes:
        for caller in CALLERS:
            if caller == ROOT:
                continue
            expected = (
                (401, "unauthorized") if caller == "anonymous" else (403, "site_admin_required")
            )
            _refused(api.call(caller, method, path, json=body), *expected)
            # Refused before the body is read: a broken one gets the same answer.
            _refused(api.call(caller, method, path, content=b"{not json"), *expected)


def test_scan_then_trust_exactly_the_key_named_then_remove_it(
    api: PlatformAPI, hosted: HostedRepos
) -> None:
    port = hosted.host.port
    presented = sorted(hosted.host.server.host_key_fingerprints)

    scanned = api.ok(ROOT, "POST", f"{K}/scan", json={"host": "127.0.0.1", "port": port})

    assert sorted(key["fingerprint"] for key in scanned) == presented
    assert all((key["host"], key["port"]) == ("127.0.0.1", port) for key in scanned)
    assert all(key["public_key"].split()[0] == key["key_type"] for key in scanned)
    assert not [key for key in api.ok(OWNER, "GET", K) if key["source"] == "stored"]

    other = generate_key().public_key.sha256_fingerprint
    mismatch = api.call(
        ROOT, "POST", K, json={"host": "127.0.0.1", "port": port, "fingerprint": other}
    )
    error = _refused(mismatch, 502, "host_key_fingerprint_mismatch")
    assert presented[0] in error["message"] and other in error["message"]
    assert not [key for key in api.ok(OWNER, "GET", K) if key["source"] == "stored"]

    wanted = presented[0]
    body = {"host": "127.0.0.1", "port": port, "fingerprint": wanted}
    trusted = api.call(ROOT, "POST", K, json=body)
    assert trusted.status_code == 201
    assert trusted.json()["created"] is True
    key = trusted.json()["key"]
    assert (key["fingerprint"], key["source"], key["name"]) == (
        wanted,
        "stored",
        f"127.0.0.1:{port}",
    )
    again = api.call(ROOT, "POST", K, json=body)
    assert (again.status_code, again.json()["created"]) == (200, False)
    stored = [k for k in api.ok(STRANGER, "GET", K) if k["source"] == "stored"]
    assert [(k["id"], k["fingerprint"]) for k in stored] == [(key["id"], wanted)]

    assert api.call(ROOT, "DELETE", f"{K}/{key['id']}").status_code == 204
    _refused(api.call(ROOT, "DELETE", f"{K}/{key['id']}"), 404, "host_key_not_found")
    assert not [k for k in api.ok(OWNER, "GET", K) if k["source"] == "stored"]

    audit = api.ok(ROOT, "GET", "/audit")["items"]
    assert [(e["action"], e["actor"], e["target"]) for e in audit[:2]] == [
        ("known_host.delete", ROOT, f"127.0.0.1:{port}"),
        ("known_host.trust", ROOT, f"127.0.0.1:{port}"),
    ]
    assert audit[1]["details"]["fingerprint"] == wanted


def test_bad_requests_name_the_problem(api: PlatformAPI) -> None:
    cases = [
        ("POST", f"{K}/scan", {"host": "-oProxyCommand=x"}, 400, "host_invalid"),
        ("POST", f"{K}/scan", {"host": "h", "port": 0}, 400, "invalid_request"),
        ("POST", f"{K}/scan", {}, 400, "invalid_request"),
        ("POST", K, {"host": "h.example", "fingerprint": "abc"}, 400, "fingerprint_invalid"),
        ("POST", K, {"host": "h.example"}, 400, "invalid_request"),
        ("DELETE", f"{K}/0", None, 400, "invalid_request"),
        ("DELETE", f"{K}/x", None, 400, "invalid_request"),
        # Beyond any id an integer column holds (PostgreSQL failed the query: a 500).
        ("DELETE", f"{K}/{2**31}", None, 400, "invalid_request"),
        # A pinned host refuses another key before anything is contacted.
        (
            "POST",
            K,
            {"host": "github.com", "fingerprint": "SHA256:" + "A" * 43},
            409,
            "host_key_pin_conflict",
        ),
    ]
    for method, path, body, status, code in cases:
        _refused(api.call(ROOT, method, path, json=body), status, code)


def _strict_api(
    tmp_path: Path, name: str, ssh_url_base: str | None = None
) -> Iterator[PlatformAPI]:
    """The API of a server whose settings allow no private or loopback target."""
    settings = Settings(data_dir=tmp_path / name, allowed_networks="")
    with Store.open(settings) as store:
        yield from platform_api(Repolink(settings, store=store), ssh_url_base=ssh_url_base)


def test_the_network_policy_applies_to_the_target(tmp_path: Path, hosted: HostedRepos) -> None:
    port = hosted.host.port
    for api in _strict_api(tmp_path, "strict"):
        for host in ("127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3", "[::1]"):
            for path, extra in ((f"{K}/scan", {}), (K, {"fingerprint": "SHA256:" + "B" * 43})):
                refused = api.call(ROOT, "POST", path, json={"host": host, "port": port, **extra})
                error = _refused(refused, 400, "host_key_scan_forbidden")
                assert "REPOLINK_ALLOWED_NETWORKS" in error["hint"]
        assert not [k for k in api.ok(ROOT, "GET", K) if k["source"] == "stored"]


def test_the_server_s_own_ssh_host_is_always_allowed(tmp_path: Path, hosted: HostedRepos) -> None:
    port = hosted.host.port
    for api in _strict_api(tmp_path, "own", ssh_url_base=f"ssh://git@127.0.0.1:{port}"):
        scanned = api.ok(ROOT, "POST", f"{K}/scan", json={"host": "127.0.0.1", "port": port})
        assert {key["fingerprint"] for key in scanned} == set(
            hosted.host.server.host_key_fingerprints
        )
        wanted = scanned[0]["fingerprint"]
        body = {"host": "127.0.0.1", "port": port, "fingerprint": wanted}
        assert api.call(ROOT, "POST", K, json=body).status_code == 201
        # Another port of the same machine is not the server's host.
        other = api.call(ROOT, "POST", f"{K}/scan", json={"host": "127.0.0.1", "port": port + 1})
        _refused(other, 400, "host_key_scan_forbidden")
