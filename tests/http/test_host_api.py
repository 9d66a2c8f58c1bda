"""The host's Bitbucket-shaped HTTP API, in process and through a real uvicorn server."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN
from repolink.auth.principal_cache import FRESH_FOR
from repolink.auth.tokens import create_token, list_tokens, revoke_token
from repolink.host.service import HostService
from repolink.http.host_api import create_host_api
from repolink.settings import Settings
from repolink.store import Store
from support.accountskit import FAST_HASHER, make_account
from support.httpkit import serving_app

pytestmark = pytest.mark.databases

with warnings.catch_warnings():
    # Starlette asks for another HTTP client library in its test client; httpx is ours.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/host/api/2.0"
ADMIN_TOKEN = "configured-admin-token-for-tests"


@dataclass
class Host:
    settings: Settings
    store: Store
    service: HostService
    client: TestClient
    token: str
    application: Repolink

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(API + path, headers=self.auth, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.client.post(API + path, json=body, headers=self.auth, **kwargs)

    def put(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.put(API + path, json=body, headers=self.auth)

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(API + path, headers=self.auth)


# Key pairs come from the host tests' `make_key` fixture: ssh-keygen, run at test time.
MakeKey = Callable[[str], Any]


def fingerprint(keypair: Any, hash_name: str) -> str:
    result = subprocess.run(
        ["ssh-keygen", "-l", "-E", hash_name, "-f", str(keypair.private_path) + ".pub"],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.split()[1]


def make_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
        admin_token=SecretStr(ADMIN_TOKEN),
    )


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    settings = make_settings(tmp_path)
    with Repolink(settings) as application:
        store = application.store
        with store.session() as session:
            _, token = create_token(session, "tests")
        app = create_host_api(application)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Host(settings, store, application.host, client, token, application)


@pytest.fixture
def repo(host: Host) -> str:
    response = host.post("/repositories/acme", {"slug": "widgets"})
    assert response.status_code == 200, response.text
    return "acme/widgets"


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert body["type"] == "error"
    assert set(body["error"]) == {"code", "message", "hint"}
    return str(body["error"]["code"])


# -- authentication -------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/repositories/acme", None),
    ("POST", "/repositories/acme", {"slug": "x"}),
    ("GET", "/repositories/acme/widgets", None),
    ("DELETE", "/repositories/acme/widgets", None),
    ("POST", "/repositories/acme/widgets", None),
    ("GET", "/repositories/acme/widgets/deploy-keys", None),
    ("POST", "/repositories/acme/widgets/deploy-keys", {"key": "x", "label": "y"}),
    ("GET", "/repositories/acme/widgets/deploy-keys/1", None),
    ("PUT", "/repositories/acme/widgets/deploy-keys/1", {"label": "y"}),
    ("DELETE", "/repositories/acme/widgets/deploy-keys/1", None),
    ("GET", "/workspaces/acme/ssh-keys", None),
    ("POST", "/users/acme/ssh-keys", {"key": "x", "label": "y"}),
    ("DELETE", "/workspaces/acme/ssh-keys/1", None),
    ("GET", "/repositories/acme/widgets/hooks", None),
    ("POST", "/repositories/acme/widgets/hooks", {"url": "http://127.0.0.1/"}),
    ("GET", "/repositories/acme/widgets/hooks/{x}", None),
    ("DELETE", "/repositories/acme/widgets/hooks/{x}", None),
    ("GET", "/repositories/acme/widgets/hooks/{x}/deliveries", None),
    # An anonymous caller learns nothing about its body either.
    ("POST", "/repositories/acme/widgets/deploy-keys", "{not json"),
    ("GET", "/repositories/acme/widgets/deploy-keys/not-a-number", None),
]


def test_every_route_refuses_missing_and_wrong_tokens_alike(host: Host, repo: str) -> None:
    wrong_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {host.token}x"},
        {"Authorization": f"Basic {host.token}"},
        {"Authorization": "Bearer"},
        {"Authorization": host.token},
    ]
    answers = set()
    for method, path, body in PROTECTED:
        content = body.encode() if isinstance(body, str) else None
        payload = None if isinstance(body, str) else body
        for headers in wrong_headers:
            response = host.client.request(
                method,
                API + path,
                headers={**headers, "content-type": "application/json"},
                json=payload,
                content=content,
            )
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            answers.add(response.content)
    assert len(answers) == 1
    assert host.client.get(API + "/repositories/acme").json()["error"] == {
        "code": "unauthorized",
        "message": "authentication required",
        "hint": "send an API token as 'Authorization: Bearer TOKEN'",
    }


def test_revoked_token_is_refused(host: Host) -> None:
    assert host.get("/repositories/acme").status_code != 401
    with host.store.session() as session:
        (token,) = list_tokens(session)
    host.application.api_tokens.revoke(LOCAL_ADMIN, token.id)
    # Revoked in this process: the very next request, though the token was just looked up.
    assert host.get("/repositories/acme").status_code == 401


def test_a_token_revoked_by_another_process_is_refused_once_its_lookup_is_stale(
    host: Host,
) -> None:
    assert host.get("/repositories/acme").status_code != 401
    # Written to the database directly, as the CLI or a second server does: this process
    # hears of it only when its remembered answer is older than FRESH_FOR.
    with host.store.session() as session:
        (token,) = list_tokens(session)
        revoke_token(session, token.id)
    deadline = time.monotonic() + 30 * FRESH_FOR
    while host.get("/repositories/acme").status_code != 401:
        assert time.monotonic() < deadline, "the revoked token is still accepted"
        time.sleep(FRESH_FOR / 4)


def test_settings_admin_token_is_accepted(host: Host, repo: str) -> None:
    response = host.client.get(
        f"{API}/repositories/{repo}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == repo


def test_a_site_admin_users_token_works_and_a_plain_users_is_403(host: Host, repo: str) -> None:
    accounts = Repolink(host.settings, store=host.store, password_hasher=FAST_HASHER)
    root = make_account(accounts, "root", site_admin=True)
    jane = make_account(accounts, "jane")
    path = f"{API}/repositories/{repo}"
    assert (
        host.client.get(path, headers={"Authorization": f"Bearer {root.token}"}).json()["full_name"]
        == repo
    )
    for headers in ({"Authorization": f"Bearer {jane.token}"}, {"Circle-Token": jane.token}):
        # Refused before the body is read: a body that cannot be parsed changes nothing.
        response = host.client.post(path + "/deploy-keys", headers=headers, content=b"{")
        assert response.status_code == 403
        assert error_code(response) == "site_admin_required"


def test_openapi_document_describes_the_routes(host: Host) -> None:
    response = host.client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert f"{API}/repositories/{{workspace}}/{{slug}}/deploy-keys/{{key_id}}" in paths
    assert f"{API}/repositories/{{workspace}}/{{slug}}/hooks" in paths


# -- repositories ---------------------------------------------------------------------------


def test_repository_create_get_list_delete(host: Host) -> None:
    created = host.post("/repositories/acme", {"slug": "widgets"})
    assert created.status_code == 200
    body = created.json()
    assert body["type"] == "repository"
    assert body["full_name"] == "acme/widgets"
    assert body["slug"] == body["name"] == "widgets"
    assert body["workspace"]["type"] == "workspace" and body["workspace"]["slug"] == "acme"
    assert body["uuid"].startswith("{") and body["uuid"].endswith("}")
    assert body["created_on"].endswith("Z")

    by_path = host.post("/repositories/acme/gadgets")
    assert by_path.status_code == 200
    assert by_path.json()["full_name"] == "acme/gadgets"

    assert host.get("/repositories/acme/widgets").json() == body
    listed = host.get("/repositories/acme").json()
    assert [item["slug"] for item in listed["values"]] == ["gadgets", "widgets"]
    assert listed["size"] == 2 and listed["page"] == 1

    assert host.delete("/repositories/acme/widgets").status_code == 204
    missing = host.get("/repositories/acme/widgets")
    assert missing.status_code == 404
    assert error_code(missing) == "repository_not_found"


def test_repository_twice_is_a_conflict(host: Host, repo: str) -> None:
    response = host.post("/repositories/acme", {"slug": "widgets"})
    assert response.status_code == 409
    assert error_code(response) == "repository_exists"


def test_repository_create_without_slug_is_400(host: Host) -> None:
    response = host.post("/repositories/acme", {})
    assert response.status_code == 400
    assert error_code(response) == "slug_required"


def test_a_storage_gone_while_serving_is_503_not_the_callers_fault(tmp_path: Path) -> None:
    """An unmounted shared volume is the server's problem: 503 with the storage's error, never
    a 400 that tells the client to change its request, and no repository made beneath."""
    storage = tmp_path / "shared"
    storage.mkdir()
    settings = make_settings(tmp_path).model_copy(update={"host_storage": storage})
    with Repolink(settings) as application:
        api = create_host_api(application)
        with TestClient(api, raise_server_exceptions=False) as client:
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            assert client.post(f"{API}/repositories/acme/before", headers=auth).status_code == 200
            storage.rename(tmp_path / "unmounted")
            refused = client.post(f"{API}/repositories/acme/after", headers=auth)
    assert refused.status_code == 503
    assert error_code(refused) == "host_storage_missing"
    assert not storage.exists()


def test_repository_list_is_paginated(host: Host) -> None:
    for slug in ("a1", "a2", "a3"):
        assert host.post(f"/repositories/acme/{slug}").status_code == 200
    first = host.get("/repositories/acme", params={"pagelen": 2}).json()
    assert [item["slug"] for item in first["values"]] == ["a1", "a2"]
    assert first["size"] == 3 and first["pagelen"] == 2
    assert first["next"] is not None and "page=2" in first["next"]
    second = host.client.get(first["next"], headers=host.auth).json()
    assert [item["slug"] for item in second["values"]] == ["a3"]
    assert second["next"] is None


def test_repository_carries_its_ssh_clone_link_when_the_base_is_known(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with Store.open(settings) as store:
        app = create_host_api(
            Repolink(settings, store=store), ssh_url_base="ssh://git@h.example:2222"
        )
        with TestClient(app) as client:
            response = client.post(
                f"{API}/repositories/acme/widgets",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
    assert response.json()["links"]["clone"] == [
        {"name": "ssh", "href": "ssh://git@h.example:2222/acme/widgets.git"}
    ]


# -- deploy keys ----------------------------------------------------------------------------


def test_deploy_key_has_every_bitbucket_field(host: Host, repo: str, make_key: MakeKey) -> None:
    keypair = make_key("ci")
    response = host.post(
        f"/repositories/{repo}/deploy-keys", {"key": keypair.public_line, "label": "CI"}
    )
    assert response.status_code == 200, response.text
    key = response.json()
    key_type, blob, _comment = keypair.public_line.split(" ", 2)
    assert key["type"] == "deploy_key"
    assert isinstance(key["id"], int)
    assert key["key"] == f"{key_type} {blob}"  # without the comment
    assert key["comment"] == "ci@tests"
    assert key["label"] == "CI"
    assert key["read_only"] is True
    assert key["repository"] == {
        "type": "repository",
        "full_name": repo,
        "name": "widgets",
        "links": {
            "self": {"href": f"http://testserver{API}/repositories/{repo}"},
            "html": {"href": f"http://testserver{API}/repositories/{repo}"},
        },
    }
    assert key["links"] == {
        "self": {"href": f"http://testserver{API}/repositories/{repo}/deploy-keys/{key['id']}"}
    }
    assert key["added_on"].endswith("Z")
    assert key["last_used"] is None
    assert key["fingerprint_sha256"] == fingerprint(keypair, "sha256")
    assert key["fingerprint_md5"] == fingerprint(keypair, "md5")

    assert host.get(f"/repositories/{repo}/deploy-keys/{key['id']}").json() == key
    listed = host.get(f"/repositories/{repo}/deploy-keys").json()
    assert listed["values"] == [key]


def test_deploy_key_can_be_made_writable_and_relabelled(
    host: Host, repo: str, make_key: MakeKey
) -> None:
    keypair = make_key("bot")
    created = host.post(
        f"/repositories/{repo}/deploy-keys",
        {"key": keypair.public_line, "label": "bot", "read_only": False},
    ).json()
    assert created["read_only"] is False
    path = f"/repositories/{repo}/deploy-keys/{created['id']}"

    relabelled = host.put(path, {"label": "release bot"}).json()
    assert relabelled["label"] == "release bot" and relabelled["read_only"] is False
    read_only = host.put(path, {"read_only": True}).json()
    assert read_only["read_only"] is True and read_only["label"] == "release bot"
    # Bitbucket clients send the key along; the same key is fine.
    same_key = host.put(path, {"key": keypair.public_line, "label": "bot 2"})
    assert same_key.status_code == 200 and same_key.json()["label"] == "bot 2"


def test_deploy_key_cannot_be_swapped_by_put(host: Host, repo: str, make_key: MakeKey) -> None:
    created = host.post(
        f"/repositories/{repo}/deploy-keys", {"key": make_key("original").public_line, "label": "a"}
    ).json()
    response = host.put(
        f"/repositories/{repo}/deploy-keys/{created['id']}",
        {"key": make_key("replacement").public_line, "label": "a"},
    )
    assert response.status_code == 400
    assert error_code(response) == "deploy_key_immutable"


def test_deploy_key_delete(host: Host, repo: str, make_key: MakeKey) -> None:
    created = host.post(
        f"/repositories/{repo}/deploy-keys", {"key": make_key("removed").public_line, "label": "a"}
    ).json()
    path = f"/repositories/{repo}/deploy-keys/{created['id']}"
    assert host.delete(path).status_code == 204
    missing = host.get(path)
    assert missing.status_code == 404
    assert error_code(missing) == "access_key_not_found"
    assert host.delete(path).status_code == 404


def test_duplicate_deploy_key_is_400(host: Host, repo: str, make_key: MakeKey) -> None:
    keypair = make_key("duplicate")
    body = {"key": keypair.public_line, "label": "first"}
    assert host.post(f"/repositories/{repo}/deploy-keys", body).status_code == 200
    again = host.post(f"/repositories/{repo}/deploy-keys", {**body, "label": "second"})
    assert again.status_code == 400
    assert error_code(again) == "access_key_duplicate"
    # The same key on another repository is fine.
    assert host.post("/repositories/acme/other").status_code == 200
    assert host.post("/repositories/acme/other/deploy-keys", body).status_code == 200


@pytest.mark.parametrize(
    "text",
    ["", "hello", "ssh-ed25519", "ssh-ed25519 AAAA", "ssh-rsa !!!notbase64!!! x"],
)
def test_bad_key_text_is_400_naming_the_key_error(host: Host, repo: str, text: str) -> None:
    response = host.post(f"/repositories/{repo}/deploy-keys", {"key": text, "label": "x"})
    assert response.status_code == 400
    assert error_code(response).startswith("key_")


def test_private_key_as_deploy_key_is_refused_without_echoing_it(
    host: Host, repo: str, make_key: MakeKey
) -> None:
    private_text = make_key("pasted").private_path.read_text()
    response = host.post(f"/repositories/{repo}/deploy-keys", {"key": private_text, "label": "x"})
    assert response.status_code == 400
    assert error_code(response) == "key_is_private"
    for line in private_text.splitlines():
        if line.strip() and "-----" not in line:
            assert line.strip() not in response.text
    assert host.get(f"/repositories/{repo}/deploy-keys").json()["values"] == []


def test_deploy_keys_of_a_missing_repository_are_404(host: Host, make_key: MakeKey) -> None:
    response = host.post(
        "/repositories/acme/nothing/deploy-keys",
        {"key": make_key("nowhere").public_line, "label": "x"},
    )
    assert response.status_code == 404
    assert error_code(response) == "repository_not_found"


# -- account keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["/workspaces/acme/ssh-keys", "/users/acme/ssh-keys"])
def test_account_keys_add_list_delete(host: Host, make_key: MakeKey, base: str) -> None:
    keypair = make_key("alice")
    response = host.post(base, {"key": keypair.public_line, "label": "alice"})
    assert response.status_code == 201, response.text
    key = response.json()
    assert key["type"] == "ssh_key"
    assert key["label"] == "alice"
    assert key["comment"] == "alice@tests"
    assert key["key"] == " ".join(keypair.public_line.split()[:2])
    assert key["created_on"].endswith("Z")
    assert key["last_used"] is None
    assert host.get(base).json()["values"] == [key]
    assert host.delete(f"{base}/{key['id']}").status_code == 204
    assert host.get(base).json()["values"] == []
    gone = host.delete(f"{base}/{key['id']}")
    assert gone.status_code == 404
    assert error_code(gone) == "account_key_not_found"


def test_account_key_cannot_become_a_deploy_key(host: Host, repo: str, make_key: MakeKey) -> None:
    keypair = make_key("person")
    body = {"key": keypair.public_line, "label": "alice"}
    assert host.post("/workspaces/acme/ssh-keys", body).status_code == 201
    response = host.post(f"/repositories/{repo}/deploy-keys", body)
    assert response.status_code == 409
    assert error_code(response) == "key_is_account_key"


# -- hooks ----------------------------------------------------------------------------------


def test_hook_create_get_list_delete_never_shows_the_secret(host: Host, repo: str) -> None:
    secret = "hook-secret-that-must-not-come-back"
    response = host.post(
        f"/repositories/{repo}/hooks",
        {
            "url": "https://ci.example/hooks/push",
            "events": ["repo:push"],
            "secret": secret,
            "description": "CI",
        },
    )
    assert response.status_code == 201, response.text
    hook = response.json()
    assert hook["type"] == "webhook_subscription"
    assert hook["url"] == "https://ci.example/hooks/push"
    assert hook["events"] == ["repo:push"]
    assert hook["active"] is True
    assert hook["secret_set"] is True
    assert hook["description"] == "CI"
    assert hook["subject"]["full_name"] == repo
    assert secret not in response.text

    uid = hook["uuid"]
    assert uid.startswith("{")
    for spelling in (uid, uid.strip("{}")):
        fetched = host.get(f"/repositories/{repo}/hooks/{spelling}")
        assert fetched.status_code == 200
        assert fetched.json() == hook
        assert secret not in fetched.text
    listed = host.get(f"/repositories/{repo}/hooks")
    assert listed.json()["values"] == [hook]
    assert secret not in listed.text
    deliveries = host.get(f"/repositories/{repo}/hooks/{uid}/deliveries").json()
    assert deliveries["values"] == []

    assert host.delete(f"/repositories/{repo}/hooks/{uid}").status_code == 204
    gone = host.get(f"/repositories/{repo}/hooks/{uid}")
    assert gone.status_code == 404
    assert error_code(gone) == "hook_not_found"
    # Issue 10 §1.4: the answer names the webhook that was not found.
    assert gone.json()["error"]["message"] == f"the repository {repo} has no webhook {uid}"


def test_hook_without_secret(host: Host, repo: str) -> None:
    hook = host.post(f"/repositories/{repo}/hooks", {"url": "http://127.0.0.1:9/x"}).json()
    assert hook["secret_set"] is False
    assert hook["events"] == ["repo:push"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/x"}, "hook_url_invalid"),
        ({"url": "file:///etc/passwd"}, "hook_url_invalid"),
        ({"url": "http://"}, "hook_url_invalid"),
        ({"url": "http://exa mple.com/"}, "hook_url_invalid"),
        ({"url": "http://example.com:99999/"}, "hook_url_invalid"),
        ({"url": "https://example.com/", "events": ["repo:fork"]}, "hook_event_unsupported"),
        ({"url": "https://example.com/", "events": []}, "hook_events_invalid"),
        ({"url": "https://example.com/", "secret": ""}, "hook_secret_invalid"),
        ({"url": "https://example.com/", "events": "repo:push"}, "invalid_request"),
        ({}, "invalid_request"),
    ],
)
def test_bad_hooks_are_400(host: Host, repo: str, body: dict[str, Any], code: str) -> None:
    response = host.post(f"/repositories/{repo}/hooks", body)
    assert response.status_code == 400, response.text
    assert error_code(response) == code


ISSUE_TARGETS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/",
    "http://127.0.0.1:22/",
    "http://2130706433/",
    "http://0x7f.1/",
]


def test_hooks_on_internal_addresses_are_400_unless_the_operator_allows_them(
    tmp_path: Path,
) -> None:
    # The targets an adversarial review got accepted (issue 10 §3.5).
    settings = make_settings(tmp_path).model_copy(update={"allowed_networks": ""})
    with Repolink(settings) as application:
        app = create_host_api(application)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with TestClient(app, raise_server_exceptions=False) as client:
            created = client.post(f"{API}/repositories/acme", json={"slug": "w"}, headers=headers)
            assert created.status_code == 200, created.text
            for url in ISSUE_TARGETS:
                response = client.post(
                    f"{API}/repositories/acme/w/hooks", json={"url": url}, headers=headers
                )
                assert response.status_code == 400, (url, response.text)
                assert error_code(response) == "webhook_url_forbidden"
                assert "REPOLINK_ALLOWED_NETWORKS" in response.json()["error"]["hint"]
            listed = client.get(f"{API}/repositories/acme/w/hooks", headers=headers).json()
            assert listed["values"] == []


def test_hook_of_another_repository_is_not_found(host: Host, repo: str) -> None:
    hook = host.post(f"/repositories/{repo}/hooks", {"url": "http://127.0.0.1:9/"}).json()
    assert host.post("/repositories/acme/other").status_code == 200
    response = host.get(f"/repositories/acme/other/hooks/{hook['uuid']}")
    assert response.status_code == 404
    assert error_code(response) == "hook_not_found"


# -- junk in, 4xx out -----------------------------------------------------------------------

JUNK_REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", "/repositories/ACME", None),
    ("GET", "/repositories/-x/y", None),
    # Encoded: a client resolves a plain ".." to /repositories, which lists repositories.
    ("GET", "/repositories/acme/%2E%2E", None),
    ("GET", "/repositories/acme/widgets/deploy-keys/-1", None),
    ("GET", "/repositories/acme/widgets/deploy-keys/0", None),
    ("GET", "/repositories/acme/widgets/deploy-keys/99999999999999999999999999", None),
    ("GET", "/repositories/acme/widgets/deploy-keys/1.5", None),
    ("GET", "/repositories/acme/widgets/hooks/not-a-uuid", None),
    ("GET", "/repositories/acme/widgets/hooks/" + "f" * 60, None),
    ("GET", "/repositories/acme?page=0", None),
    ("GET", "/repositories/acme?pagelen=1000", None),
    ("GET", "/repositories/acme?page=abc", None),
    ("GET", "/repositories/" + "a" * 300, None),
    ("GET", "/nothing/here", None),
    ("PATCH", "/repositories/acme/widgets", None),
    ("POST", "/repositories/acme", []),
    ("POST", "/repositories/acme", "null"),
    ("POST", "/repositories/acme", {"slug": 5}),
    ("POST", "/repositories/acme", {"slug": "Bad Slug"}),
    ("POST", "/repositories/acme/widgets/deploy-keys", {"key": None, "label": "x"}),
    ("POST", "/repositories/acme/widgets/deploy-keys", {"key": ["a"], "label": "x"}),
    ("POST", "/repositories/acme/widgets/deploy-keys", {"key": "x" * 70_000, "label": "x"}),
    ("POST", "/repositories/acme/widgets/deploy-keys", {"key": "\x00\x01", "label": "x"}),
    ("POST", "/repositories/acme/widgets/deploy-keys", {"key": "ssh-ed25519 AAAA", "label": ""}),
    ("POST", "/repositories/acme/widgets/deploy-keys", {"key": "a", "read_only": "maybe"}),
    ("PUT", "/repositories/acme/widgets/deploy-keys/1", {"label": "x"}),
    ("PUT", "/repositories/acme/widgets/deploy-keys/1", "[]"),
    ("POST", "/workspaces/acme/ssh-keys", {"key": "ssh-rsa AAAAB3NzaC1yc2E=", "label": "x"}),
    ("POST", "/workspaces/Bad/ssh-keys", {"key": "x", "label": "x"}),
    ("DELETE", "/workspaces/acme/ssh-keys/abc", None),
    ("POST", "/repositories/acme/widgets/hooks", {"url": "http://[::1"}),
    ("POST", "/repositories/acme/widgets/hooks", {"url": "x" * 5000}),
    ("POST", "/repositories/acme/widgets/hooks", {"url": "http://a/", "secret": "\n"}),
    ("POST", "/repositories/acme/widgets/hooks", '{"url": '),
    ("POST", "/repositories/acme/widgets/hooks", "\xff\xfe"),
]


def test_junk_requests_get_a_4xx_json_error(host: Host, repo: str) -> None:
    for method, path, body in JUNK_REQUESTS:
        if isinstance(body, str):
            kwargs: dict[str, Any] = {
                "content": body.encode("utf-8", "surrogateescape"),
                "headers": {**host.auth, "content-type": "application/json"},
            }
        else:
            kwargs = {"json": body, "headers": host.auth}
        response = host.client.request(method, API + path, **kwargs)
        assert 400 <= response.status_code < 500, (method, path, response.text)
        error_code(response)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
body_fields = st.fixed_dictionaries(
    {},
    optional={
        "key": json_values,
        "label": json_values,
        "read_only": json_values,
        "url": json_values,
        "events": json_values,
        "secret": json_values,
        "slug": json_values,
    },
)
path_segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
)


@hypothesis_settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(
        [
            "/repositories/{ws}",
            "/repositories/{ws}/{slug}",
            "/repositories/{ws}/{slug}/deploy-keys",
            "/repositories/{ws}/{slug}/deploy-keys/{item}",
            "/workspaces/{ws}/ssh-keys",
            "/repositories/{ws}/{slug}/hooks",
            "/repositories/{ws}/{slug}/hooks/{item}",
        ]
    ),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    workspace=st.one_of(st.just("acme"), path_segment),
    slug=st.one_of(st.just("widgets"), path_segment),
    item=st.one_of(st.just("1"), path_segment),
    body=st.one_of(body_fields, json_values),
)
def test_fuzzed_requests_never_answer_500(
    host: Host,
    route: str,
    method: str,
    workspace: str,
    slug: str,
    item: str,
    body: Any,
) -> None:
    path = route.format(
        ws=quote(workspace, safe=""), slug=quote(slug, safe=""), item=quote(item, safe="")
    )
    response = host.client.request(method, API + path, json=body, headers=host.auth)
    assert response.status_code < 500, (method, path, body, response.text)
    if response.status_code >= 400:
        error_code(response)


# -- a real server --------------------------------------------------------------------------


@contextmanager
def served(tmp_path: Path) -> Iterator[httpx.Client]:
    """A real uvicorn server on a free port, on its own thread; a client for its API."""
    settings = make_settings(tmp_path)
    with Store.open(settings) as store:
        app = create_host_api(Repolink(settings, store=store))
        with (
            serving_app(app) as base,
            httpx.Client(base_url=base + API, trust_env=False) as client,
        ):
            yield client


def test_real_uvicorn_server_serves_the_api(tmp_path: Path, make_key: MakeKey) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with served(tmp_path) as client:
        assert client.get("/repositories/acme").status_code == 401
        created = client.post("/repositories/acme", json={"slug": "web"}, headers=auth)
        assert created.status_code == 200
        keypair = make_key("served")
        added = client.post(
            "/repositories/acme/web/deploy-keys",
            json={"key": keypair.public_line, "label": "deploy"},
            headers=auth,
        )
        assert added.status_code == 200
        assert added.json()["read_only"] is True
        listed = client.get("/repositories/acme/web/deploy-keys", headers=auth).json()
        assert [key["label"] for key in listed["values"]] == ["deploy"]


def post_together(client: httpx.Client, requests: list[tuple[str, Any]]) -> list[httpx.Response]:
    """POST every (path, body) at once from its own thread, released together."""
    barrier = threading.Barrier(len(requests))
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def post(request: tuple[str, Any]) -> httpx.Response:
        barrier.wait()
        return client.post(request[0], json=request[1], headers=auth)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(post, requests))


def test_parallel_creations_in_a_new_workspace_answer_created_or_conflict(
    tmp_path: Path, make_key: MakeKey
) -> None:
    # Issue 10 §3.6: nine of ten parallel creations in a new workspace answered 500.
    keys = [make_key(f"person-{i}").public_line for i in range(10)]
    with served(tmp_path) as client:
        distinct = post_together(client, [(f"/repositories/new1/r{i}", None) for i in range(10)])
        assert [r.status_code for r in distinct] == [200] * 10, [r.text for r in distinct]
        same = post_together(client, [("/repositories/new2", {"slug": "same"})] * 10)
        assert sorted(r.status_code for r in same) == [200] + [409] * 9, [r.text for r in same]
        assert {error_code(r) for r in same if r.status_code == 409} == {"repository_exists"}
        added = post_together(
            client, [("/users/new3/ssh-keys", {"key": key, "label": "laptop"}) for key in keys]
        )
        assert [r.status_code for r in added] == [201] * 10, [r.text for r in added]
        twice = post_together(
            client, [("/users/new4/ssh-keys", {"key": keys[0], "label": "laptop"})] * 10
        )
        # A duplicate key answers 400, as Bitbucket Cloud does (http/errors.py), never a 500.
        assert sorted(r.status_code for r in twice) == [201] + [400] * 9, [r.text for r in twice]
        assert {error_code(r) for r in twice if r.status_code == 400} == {"account_key_duplicate"}
