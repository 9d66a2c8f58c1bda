"""Who may see and do what, across every API of the service (issue 11 §2, §3, §5; DESIGN §5).

Two projects, A and B, each connected to a hosted repository and fetched, with additional
keys, key rules, a user key, webhook deliveries and members. The sweep walks the service's
OpenAPI document: every operation must be classified in :data:`REQUIRED` (a new route fails
the test until it is), and every operation with a project in its path is called on A as

- anonymous: 401 ``unauthorized``;
- B's admin, no member of A: 404 with the very body a missing project gets (no existence leak);
- A's viewer, member, admin: 403 ``role_required`` exactly when the role is too low.

The IDOR test then uses B's sub-resource ids on A's paths as A's admin: 404, never B's data,
never a change to B.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.errors import NotFound
from repolink.http.service_app import create_service_app
from repolink.keys import generate_key
from repolink.platform.webhook_providers import PROVIDERS
from repolink.settings import Settings
from repolink.signing import sign_body
from repolink.store.models.accounts import ApiToken
from repolink.store.types import utcnow
from support.accountskit import FAST_HASHER, PASSWORD, make_account
from support.apikit import ANONYMOUS, DEV, OWNER, ROOT, STRANGER, WATCHER, PlatformAPI, platform_api
from support.platformkit import HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases

A, B = "alpha", "beta"
MISSING = "nowhere"
B_ADMIN = STRANGER  # admin of B, no member of A
# Callers of A by role, lowest first.
BY_ROLE = ((WATCHER, Role.VIEWER), (DEV, Role.MEMBER), (OWNER, Role.ADMIN))

SITE_ADMIN = "site_admin"  # a site admin's operation (host API, known hosts, audit log)
SIGNED_IN = "signed_in"  # any authenticated caller
OPEN = "open"  # no token needed (health, webhook receivers: the signature authenticates)

# The role each operation of the document needs, and a valid body for it (so a refusal is
# about the role, not the body). Every operation of the document must be here.
V1 = "/api/v1/projects/{slug}"
V2 = "/api/v2/project/{project_slug}/checkout-key"
V11 = "/api/v1.1/project/{vcs_type}/{org}/{repo}/checkout-key"
HOST = "/host/api/2.0"
REQUIRED: dict[tuple[str, str], tuple[Role | str, Any]] = {
    ("GET", "/healthz"): (OPEN, None),
    ("GET", "/readyz"): (OPEN, None),
    ("POST", "/hooks/{provider}/{project}"): (OPEN, None),
    ("GET", "/api/v1/projects"): (SIGNED_IN, None),
    ("POST", "/api/v1/projects"): (SIGNED_IN, {"name": "Made"}),
    ("GET", "/api/v1/known-hosts"): (SIGNED_IN, None),  # public host keys
    ("POST", "/api/v1/known-hosts"): (
        SITE_ADMIN,
        {"host": "127.0.0.1", "port": 1, "fingerprint": "SHA256:" + "A" * 43},
    ),
    ("POST", "/api/v1/known-hosts/scan"): (SITE_ADMIN, {"host": "127.0.0.1", "port": 1}),
    ("DELETE", "/api/v1/known-hosts/{key_id}"): (SITE_ADMIN, None),
    ("GET", "/api/v1/audit"): (SITE_ADMIN, None),
    # A project's own routes.
    ("GET", V1): (Role.VIEWER, None),
    ("PATCH", V1): (Role.ADMIN, {"name": "Alpha Renamed"}),
    ("DELETE", V1): (Role.ADMIN, None),
    ("GET", V1 + "/members"): (Role.VIEWER, None),
    ("PUT", V1 + "/members/{username}"): (Role.ADMIN, {"role": "viewer"}),
    ("DELETE", V1 + "/members/{username}"): (Role.ADMIN, None),
    ("GET", V1 + "/repository"): (Role.VIEWER, None),
    ("PUT", V1 + "/repository"): (Role.ADMIN, "repository"),
    ("DELETE", V1 + "/repository"): (Role.ADMIN, None),
    ("POST", V1 + "/fetch"): (Role.MEMBER, None),
    ("GET", V1 + "/fetches"): (Role.VIEWER, None),
    ("GET", V1 + "/fetches/{run_id}"): (Role.VIEWER, None),
    ("GET", V1 + "/doctor"): (Role.MEMBER, None),
    ("GET", V1 + "/commits"): (Role.VIEWER, None),
    ("GET", V1 + "/commits/{sha}"): (Role.VIEWER, None),
    ("POST", V1 + "/commits/{sha}/hide"): (Role.MEMBER, None),
    ("POST", V1 + "/commits/{sha}/unhide"): (Role.MEMBER, None),
    ("GET", V1 + "/refs"): (Role.VIEWER, None),
    ("GET", V1 + "/keys"): (Role.VIEWER, None),
    ("POST", V1 + "/keys/rotate"): (Role.ADMIN, {"generate": {"type": "ed25519"}}),
    ("POST", V1 + "/keys/rotate/complete"): (Role.ADMIN, None),
    ("POST", V1 + "/keys/rotate/abort"): (Role.ADMIN, None),
    ("GET", V1 + "/additional-keys"): (Role.VIEWER, None),
    ("POST", V1 + "/additional-keys"): (Role.ADMIN, {"generate": {}, "hostname": "h.example"}),
    ("DELETE", V1 + "/additional-keys/{key_id}"): (Role.ADMIN, None),
    ("GET", V1 + "/key-rules"): (Role.VIEWER, None),
    ("POST", V1 + "/key-rules"): (Role.ADMIN, {"prefix": "git@h.example:t/", "key": "deploy"}),
    ("DELETE", V1 + "/key-rules/{rule_id}"): (Role.ADMIN, None),
    ("GET", V1 + "/audit"): (Role.ADMIN, None),
    ("GET", "/api/v1/projects/{project}/webhooks"): (Role.VIEWER, None),
    ("POST", "/api/v1/projects/{project}/webhooks/secret"): (Role.ADMIN, None),
    # CircleCI's: reading a viewer, a deploy key an admin (the fingerprint is A's deploy key).
    ("GET", V2): (Role.VIEWER, None),
    ("POST", V2): (Role.ADMIN, {"type": "deploy-key"}),
    ("GET", V2 + "/{fingerprint}"): (Role.VIEWER, None),
    ("DELETE", V2 + "/{fingerprint}"): (Role.ADMIN, None),
    ("GET", V11): (Role.VIEWER, None),
    ("POST", V11): (Role.ADMIN, {"type": "deploy-key"}),
    ("GET", V11 + "/{fingerprint}"): (Role.VIEWER, None),
    ("DELETE", V11 + "/{fingerprint}"): (Role.ADMIN, None),
}
HOST_OPERATIONS = {
    ("GET", "/workspaces"),
    ("GET", "/user/workspaces"),
    ("GET", "/workspaces/{workspace}"),
    ("GET", "/repositories"),
    ("GET", "/repositories/{workspace}"),
    ("POST", "/repositories/{workspace}"),
    ("POST", "/repositories/{workspace}/{slug}"),
    ("PUT", "/repositories/{workspace}/{slug}"),
    ("GET", "/repositories/{workspace}/{slug}"),
    ("DELETE", "/repositories/{workspace}/{slug}"),
    ("GET", "/repositories/{workspace}/{slug}/deploy-keys"),
    ("POST", "/repositories/{workspace}/{slug}/deploy-keys"),
    ("GET", "/repositories/{workspace}/{slug}/deploy-keys/{key_id}"),
    ("PUT", "/repositories/{workspace}/{slug}/deploy-keys/{key_id}"),
    ("DELETE", "/repositories/{workspace}/{slug}/deploy-keys/{key_id}"),
    ("GET", "/workspaces/{workspace}/ssh-keys"),
    ("POST", "/workspaces/{workspace}/ssh-keys"),
    ("DELETE", "/workspaces/{workspace}/ssh-keys/{key_id}"),
    ("GET", "/users/{workspace}/ssh-keys"),
    ("POST", "/users/{workspace}/ssh-keys"),
    ("DELETE", "/users/{workspace}/ssh-keys/{key_id}"),
    ("GET", "/repositories/{workspace}/{slug}/hooks"),
    ("POST", "/repositories/{workspace}/{slug}/hooks"),
    ("GET", "/repositories/{workspace}/{slug}/hooks/{uid}"),
    ("DELETE", "/repositories/{workspace}/{slug}/hooks/{uid}"),
    ("GET", "/repositories/{workspace}/{slug}/hooks/{uid}/deliveries"),
}
REQUIRED.update({(method, HOST + path): (SITE_ADMIN, None) for method, path in HOST_OPERATIONS})

# Operations that remove what later ones need run last, the project's own deletion at the end.
LAST = (
    ("DELETE", V1 + "/members/{username}"),
    ("DELETE", V1 + "/additional-keys/{key_id}"),
    ("DELETE", V1 + "/key-rules/{rule_id}"),
    ("DELETE", V2 + "/{fingerprint}"),
    ("DELETE", V11 + "/{fingerprint}"),
    ("DELETE", V1 + "/repository"),
    ("DELETE", V1),
)


@dataclass
class Project:
    """What one project of the sweep has, by the ids its paths name."""

    slug: str
    repo: str  # the hosted repository it is connected to (team/<repo>)
    url: str
    run_id: int
    sha: str
    deploy_md5: str
    deploy_sha256: str
    additional_key_id: str
    key_rule_id: str
    user_key_md5: str
    member: str  # a member of this project only


@dataclass
class World:
    api: PlatformAPI
    a: Project
    b: Project

    def send(self, caller: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.api.headers(caller), **kwargs.pop("headers", {})}
        return self.api.client.request(method, path, headers=headers, **kwargs)

    def values(self, project: Project, slug: str) -> dict[str, str]:
        """:func:`path_values`, with the deploy key ``project`` has now (a connection replaced
        or a rotation completed by an earlier call changes it)."""
        values = path_values(project, slug)
        try:
            current = self.api.app.connections.connection_info(project.slug).deploy_key
        except NotFound:  # the connection is deleted near the end of the sweep
            return values
        values["fingerprint"] = current.fingerprint_md5
        return values


@pytest.fixture
def world(platform: Platform, hosted: HostedRepos) -> Iterator[World]:
    for api in platform_api(platform.app):
        api.app.users.create(LOCAL_ADMIN, "alice")
        api.app.users.create(LOCAL_ADMIN, "bob")
        # A: made by its admin (owner), with dev and watcher; B: made by root, B_ADMIN its admin.
        api.create(A)
        api.ok(ROOT, "POST", "/projects", json={"name": "Beta", "slug": B})
        api.app.access.set_member(LOCAL_ADMIN, B, B_ADMIN, Role.ADMIN)
        api.app.access.set_member(LOCAL_ADMIN, B, DEV, Role.MEMBER)
        api.app.access.set_member(LOCAL_ADMIN, A, "alice", Role.VIEWER)
        api.app.access.set_member(LOCAL_ADMIN, B, "bob", Role.VIEWER)
        yield World(
            api,
            populate(api, hosted, A, "app", OWNER, "alice"),
            populate(api, hosted, B, "other", B_ADMIN, "bob"),
        )


def populate(
    api: PlatformAPI, hosted: HostedRepos, slug: str, repo: str, admin: str, member: str
) -> Project:
    hosted_repo = getattr(hosted, repo)
    url = hosted_repo.url()
    # The two hosted repositories may share commits; each project gets one of its own on top.
    hosted_repo.commit(f"only in {slug} {secrets.token_hex(8)}")
    key = granted_key(hosted.host, repo, slug).to_openssh().decode()
    p = f"/projects/{slug}"
    api.ok(admin, "PUT", f"{p}/repository", json={"url": url, "private_key": key})
    done = api.ok(admin, "POST", f"{p}/fetch?wait=true")
    assert not done["errors"], done
    sha = api.ok(admin, "GET", f"{p}/commits")["items"][0]["sha"]
    deploy = api.ok(admin, "GET", f"{p}/repository")["deploy_key"]
    additional = api.ok(admin, "POST", f"{p}/additional-keys", json={"generate": {}})
    rule = api.ok(
        admin,
        "POST",
        f"{p}/key-rules",
        json={"prefix": f"git@{slug}.example:team/", "key": additional["fingerprint_sha256"]},
    )
    # DEV is a member of both projects: a user key in each.
    user_key = api.client.post(
        f"/api/v2/project/{slug}/checkout-key", headers=api.headers(DEV), json={"type": "user-key"}
    )
    assert user_key.status_code == 201, user_key.text
    secret = api.app.webhooks_in.secret(slug).value
    body = json.dumps({"repository": url}).encode()
    generic = PROVIDERS["generic"]
    delivered = api.client.post(
        f"/hooks/generic/{slug}",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Repolink-Delivery": f"delivery-{slug}",
            generic.signature_header: sign_body(secret.encode(), body),
        },
    )
    assert delivered.status_code == 202, delivered.text
    return Project(
        slug=slug,
        repo=repo,
        url=url,
        run_id=done["fetch"]["id"],
        sha=sha,
        deploy_md5=deploy["fingerprint_md5"],
        deploy_sha256=deploy["fingerprint_sha256"],
        additional_key_id=additional["id"],
        key_rule_id=rule["id"],
        user_key_md5=user_key.json()["fingerprint"],
        member=member,
    )


def path_values(project: Project, slug: str) -> dict[str, str]:
    """The path parameters of the sweep's calls on ``project`` (named ``slug``)."""
    return {
        "slug": slug,
        "project": slug,
        "project_slug": slug,
        "vcs_type": "gh",
        "org": "team",
        # A missing project's CircleCI path is a repository no project is connected to.
        "repo": project.repo if slug == project.slug else slug,
        "username": project.member,
        "run_id": str(project.run_id),
        "sha": project.sha,
        "key_id": project.additional_key_id,
        "rule_id": project.key_rule_id,
        "fingerprint": project.deploy_md5,
        "provider": "generic",
        "workspace": "team",
        "uid": "{00000000-0000-0000-0000-000000000000}",
    }


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: quote(values[m.group(1)], safe=""), template)


def body_of(world: World, spec: Any) -> Any:
    if spec == "repository":
        return {"url": world.a.url, "generate": {"type": "ed25519"}}
    return spec


def error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def operations(world: World) -> list[tuple[str, str]]:
    return operations_of(world.api.client)


def operations_of(client: TestClient) -> list[tuple[str, str]]:
    document = client.get("/api/v1/openapi.json").json()
    found = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    return sorted(found, key=lambda op: (LAST.index(op) if op in LAST else -1, op))


def test_every_operation_of_the_document_is_classified(service: Service) -> None:
    found = set(operations_of(service.client))
    unclassified = sorted(found - set(REQUIRED))
    assert not unclassified, f"classify these operations in REQUIRED: {unclassified}"
    assert not sorted(set(REQUIRED) - found), "REQUIRED names operations the API no longer has"


def test_each_project_operation_answers_by_role(world: World) -> None:
    """Anonymous 401; B's admin 404 as for a missing project; A's roles 403 exactly below."""
    checked = 0
    for method, template in operations(world):
        required, spec = REQUIRED[(method, template)]
        if not isinstance(required, Role):
            continue
        checked += 1
        body = body_of(world, spec)
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        path = fill(template, world.values(world.a, A))
        where = f"{method} {template}"

        anonymous = world.send(ANONYMOUS, method, path, **kwargs)
        assert (anonymous.status_code, error_code(anonymous)) == (401, "unauthorized"), where

        # A non-member learns nothing: A answers as a project that does not exist.
        hidden = world.send(B_ADMIN, method, path, **kwargs)
        missing = world.send(
            B_ADMIN, method, fill(template, world.values(world.a, MISSING)), **kwargs
        )
        assert hidden.status_code == 404, (where, hidden.status_code, hidden.text)
        assert error_code(hidden) == "project_not_found", (where, hidden.text)
        assert hidden.text == missing.text.replace(
            MISSING, world.a.repo if "checkout-key" in template else A
        ), where

        for caller, role in BY_ROLE:
            answer = world.send(caller, method, path, **kwargs)
            if role.allows(required):
                # Allowed: whatever the operation answers, it is not a refusal of the caller.
                assert answer.status_code not in (401, 403), (where, caller, answer.text)
                assert error_code(answer) != "project_not_found", (where, caller, answer.text)
                break  # the lowest allowed role is enough: higher ones would repeat the change
            assert answer.status_code == 403, (where, caller, answer.status_code, answer.text)
            assert error_code(answer) == "role_required", (where, caller, answer.text)
    assert checked >= 39


def test_site_admin_operations_refuse_everyone_else(world: World) -> None:
    """Site admins' operations: 401 anonymous, 403 for project admins and everyone else;
    those of any signed-in user: 401 anonymous only."""
    for method, template in operations(world):
        required, spec = REQUIRED[(method, template)]
        if required not in (SITE_ADMIN, SIGNED_IN):
            continue
        path = fill(template, world.values(world.a, A))
        kwargs: dict[str, Any] = {} if spec is None else {"json": spec}
        anonymous = world.send(ANONYMOUS, method, path, **kwargs)
        assert (anonymous.status_code, error_code(anonymous)) == (401, "unauthorized"), path
        if required == SIGNED_IN:
            answer = world.send(WATCHER, method, path, **kwargs)
            assert answer.is_success, (method, path, answer.text)
            continue
        for caller in (OWNER, DEV, WATCHER, B_ADMIN):
            answer = world.send(caller, method, path, **kwargs)
            assert (answer.status_code, error_code(answer)) == (403, "site_admin_required"), (
                method,
                path,
                caller,
                answer.text,
            )


def assert_not_found(answer: httpx.Response, where: str) -> None:
    assert answer.status_code == 404, (where, answer.status_code, answer.text)


def snapshot(world: World, slug: str, sha: str) -> dict[str, Any]:
    """What the IDOR calls could change of a project, left out what its own background fetch
    changes meanwhile (run states, a key's last use)."""

    def read(path: str) -> Any:
        return world.send(ROOT, "GET", f"/api/v1/projects/{slug}{path}").json()

    keys = read("/keys")
    return {
        "fetches": sorted(run["id"] for run in read("/fetches")["items"]),
        "additional_keys": sorted(key["id"] for key in read("/additional-keys")),
        "key_rules": sorted((rule["id"], rule["prefix"]) for rule in read("/key-rules")),
        "members": sorted((m["username"], m["role"]) for m in read("/members")["items"]),
        "keys": sorted(key["fingerprint_sha256"] for key in keys["items"]),
        "pending_rotation": keys["pending_rotation"] is not None,
        "hidden": read(f"/commits/{sha}")["hidden"],
        "checkout_keys": sorted(
            key["fingerprint"]
            for key in world.send(ROOT, "GET", f"/api/v2/project/{slug}/checkout-key").json()[
                "items"
            ]
        ),
    }


def test_b_s_ids_on_a_s_paths_are_not_found_and_change_nothing_of_b(world: World) -> None:
    """IDOR: A's admin names B's sub-resources through A's paths."""
    a, b = world.a, world.b
    before = snapshot(world, B, b.sha)
    a_commits = world.send(ROOT, "GET", f"/api/v1/projects/{A}/commits?limit=500").json()
    assert b.sha not in {commit["sha"] for commit in a_commits["items"]}
    b_additional = world.send(ROOT, "GET", f"/api/v1/projects/{B}/additional-keys").json()[0]

    p = f"/api/v1/projects/{A}"
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"{p}/fetches/{b.run_id}", None),
        ("GET", f"{p}/commits/{b.sha}", None),
        ("POST", f"{p}/commits/{b.sha}/hide", None),
        ("POST", f"{p}/commits/{b.sha}/unhide", None),
        ("DELETE", f"{p}/additional-keys/{b.additional_key_id}", None),
        (
            "DELETE",
            f"{p}/additional-keys/{quote(b_additional['fingerprint_sha256'], safe='')}",
            None,
        ),
        ("DELETE", f"{p}/additional-keys/{quote(b_additional['fingerprint_md5'], safe='')}", None),
        ("POST", f"{p}/key-rules", {"prefix": "git@x.example:t/", "key": b.additional_key_id}),
        (
            "POST",
            f"{p}/key-rules",
            {"prefix": "git@y.example:t/", "key": b_additional["fingerprint_sha256"]},
        ),
        ("DELETE", f"{p}/key-rules/{b.key_rule_id}", None),
        ("DELETE", f"{p}/members/{b.member}", None),
        ("GET", f"/api/v2/project/{A}/checkout-key/{quote(b.user_key_md5, safe='')}", None),
        ("DELETE", f"/api/v2/project/{A}/checkout-key/{quote(b.user_key_md5, safe='')}", None),
        ("GET", f"/api/v2/project/{A}/checkout-key/{quote(b.deploy_md5, safe='')}", None),
        ("DELETE", f"/api/v2/project/{A}/checkout-key/{quote(b.deploy_md5, safe='')}", None),
        ("GET", f"/api/v1.1/project/gh/team/{a.repo}/checkout-key/{b.deploy_md5}", None),
        ("DELETE", f"/api/v1.1/project/gh/team/{a.repo}/checkout-key/{b.user_key_md5}", None),
        # B's repository path through CircleCI's slug, as A's admin: B stays invisible.
        ("GET", f"/api/v2/project/gh/team/{b.repo}/checkout-key", None),
        ("POST", f"/api/v2/project/gh/team/{b.repo}/checkout-key", {"type": "deploy-key"}),
    ]
    for method, path, body in calls:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        # A's admin; and a member of both projects, who owns B's user key, on A's path.
        for caller in (OWNER, DEV):
            if caller == DEV and f"/team/{b.repo}/" in path:
                continue  # B's own path: DEV is a member of B
            answer = world.send(caller, method, path, **kwargs)
            if caller == OWNER or method == "GET":
                assert_not_found(answer, f"{caller} {method} {path}")
            else:  # below A's admin role: refused either way
                assert answer.status_code in (403, 404), (caller, method, path, answer.text)
            for secret in (b.deploy_sha256, b_additional["public_key"].split()[1]):
                assert secret not in answer.text, (method, path, answer.text)

    assert snapshot(world, B, b.sha) == before

    # A's webhook settings show A's deliveries only.
    hooks = world.send(OWNER, "GET", f"/api/v1/projects/{A}/webhooks").json()
    assert {d["delivery_id"] for d in hooks["deliveries"]} == {f"delivery-{A}"}


def test_only_a_project_s_admins_read_its_webhook_secret(world: World) -> None:
    for caller, role in BY_ROLE:
        answer = world.send(caller, "GET", f"/api/v1/projects/{A}/webhooks")
        assert answer.status_code == 200, answer.text
        assert (answer.json()["secret"] is not None) == (role is Role.ADMIN), caller
        secret = world.api.app.webhooks_in.secret(A).value
        assert (secret in answer.text) == (role is Role.ADMIN), caller


# -- tokens ------------------------------------------------------------------------------------

BOOTSTRAP_TOKEN = "bootstrap-admin-token-of-the-sweep"


@dataclass
class Service:
    app: Repolink
    client: TestClient


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    settings = Settings(data_dir=tmp_path / "data", admin_token=SecretStr(BOOTSTRAP_TOKEN))
    with Repolink(settings, password_hasher=FAST_HASHER) as app:
        app.host.create_repository("team", "tools")
        app.access.create_project(LOCAL_ADMIN, "Tools", slug="tools")
        app.connections.save("tools", "git@forge.example:team/tools.git")
        with TestClient(create_service_app(app), raise_server_exceptions=False) as client:
            yield Service(app, client)


# One route of each API a token opens: the platform API, CircleCI's (both versions), the host.
TOKEN_ROUTES = (
    "/api/v1/projects/tools",
    "/api/v2/project/tools/checkout-key",
    "/api/v1.1/project/gh/team/tools/checkout-key",
    "/host/api/2.0/repositories/team/tools",
)


def as_bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_circle(token: str) -> dict[str, str]:
    return {"Circle-Token": token}


def refused(service: Service, headers: dict[str, str], path: str) -> None:
    answer = service.client.get(path, headers=headers)
    assert (answer.status_code, error_code(answer)) == (401, "unauthorized"), (path, answer.text)


def test_expired_revoked_and_deleted_users_tokens_are_401_everywhere(service: Service) -> None:
    app = service.app
    tokens = {}
    for name in ("expired", "revoked", "deleted"):
        make_account(app, name, site_admin=True)  # a site admin: only the token's state refuses
        info, tokens[name] = app.api_tokens.create(LOCAL_ADMIN, name, "sweep")
        if name == "revoked":
            app.api_tokens.revoke(LOCAL_ADMIN, info.id)
        if name == "expired":
            with app.store.session() as session:
                row = session.get(ApiToken, info.id)
                assert row is not None
                row.expires_at = utcnow() - timedelta(seconds=1)
    app.users.delete(LOCAL_ADMIN, "deleted")
    for token in tokens.values():
        for path in TOKEN_ROUTES:
            refused(service, as_bearer(token), path)
            refused(service, as_circle(token), path)


def test_a_plain_users_token_is_403_on_the_host_api_and_the_settings_token_a_site_admin(
    service: Service,
) -> None:
    plain = make_account(service.app, "plain")
    for path in TOKEN_ROUTES:
        answer = service.client.get(path, headers=as_bearer(plain.token))
        expected = (403, "site_admin_required") if path.startswith(HOST) else (404, None)
        assert answer.status_code == expected[0], (path, answer.text)
        if expected[1] is not None:
            assert error_code(answer) == expected[1]
        for headers in (as_bearer(BOOTSTRAP_TOKEN), as_circle(BOOTSTRAP_TOKEN)):
            answer = service.client.get(path, headers=headers)
            assert answer.status_code == 200, (path, answer.text)


def test_tokens_in_the_query_string_and_passwords_are_not_credentials(service: Service) -> None:
    user = make_account(service.app, "queried", site_admin=True)
    for path in TOKEN_ROUTES:
        for name in ("token", "access_token", "circle-token", "private_token"):
            refused(service, {}, f"{path}?{urlencode({name: user.token})}")
        refused(service, as_bearer(PASSWORD), path)
        refused(service, as_circle(PASSWORD), path)
        basic = base64.b64encode(f"queried:{PASSWORD}".encode()).decode()
        refused(service, {"Authorization": f"Basic {basic}"}, path)
        # The token itself as Basic's password, as some clients send it: not accepted either.
        basic = base64.b64encode(f"queried:{user.token}".encode()).decode()
        refused(service, {"Authorization": f"Basic {basic}"}, path)


# -- webhook receivers -------------------------------------------------------------------------


def test_webhook_receivers_tell_no_project_from_a_wrong_signature(service: Service) -> None:
    """An unknown project, a project without a secret and a wrong signature answer alike; a
    good signature needs no token; the size cap comes before the project is looked up."""
    app = service.app
    app.access.create_project(LOCAL_ADMIN, "Secretless", slug="secretless")
    secret = app.webhooks_in.secret("tools").value
    body = json.dumps({"repository": "git@forge.example:team/tools.git"}).encode()
    header = PROVIDERS["generic"].signature_header

    def post(project: str, signature: str, content: bytes = body) -> httpx.Response:
        return service.client.post(
            f"/hooks/generic/{project}",
            content=content,
            headers={"Content-Type": "application/json", header: signature},
        )

    wrong = post("tools", sign_body(b"not the secret", body))
    assert wrong.status_code == 401, wrong.text
    for project in ("no-such-project", "secretless"):
        answer = post(project, sign_body(secret.encode(), body))
        assert (answer.status_code, answer.text) == (wrong.status_code, wrong.text), project
    assert post("tools", sign_body(secret.encode(), body)).status_code == 202
    oversized = b" " * (1024 * 1024 + 1)
    for project in ("tools", "no-such-project"):
        assert post(project, sign_body(secret.encode(), oversized), oversized).status_code == 413


# -- escalation --------------------------------------------------------------------------------


def test_no_caller_raises_their_own_role_or_moves_a_project(world: World) -> None:
    api, p = world.api, f"/api/v1/projects/{A}"
    # A member making themself admin, a viewer a member: refused, roles unchanged.
    for caller, role in ((DEV, "admin"), (WATCHER, "member"), (WATCHER, "admin")):
        answer = world.send(caller, "PUT", f"{p}/members/{caller}", json={"role": role})
        assert (answer.status_code, error_code(answer)) == (403, "role_required"), answer.text
    roles = {
        m["username"]: m["role"] for m in api.ok(ROOT, "GET", f"/projects/{A}/members")["items"]
    }
    assert (roles[DEV], roles[WATCHER]) == ("member", "viewer")
    # A viewer cannot give the project a preferred (user) checkout key.
    answer = world.send(
        WATCHER, "POST", f"/api/v2/project/{A}/checkout-key", json={"type": "user-key"}
    )
    assert (answer.status_code, error_code(answer)) == (403, "role_required"), answer.text
    # Fields a body does not have change nothing: not the slug, the id, nor anyone's rights.
    before = api.ok(ROOT, "GET", f"/projects/{A}")
    patched = api.ok(
        OWNER,
        "PATCH",
        f"/projects/{A}",
        json={"name": "Alpha", "slug": "api", "id": "0" * 32, "site_admin": True},
    )
    assert (patched["slug"], patched["id"]) == (A, before["id"])
    made = api.ok(
        WATCHER,
        "POST",
        "/projects",
        json={
            "name": "Mine",
            "members": [{"username": WATCHER, "role": "admin"}],
            "site_admin": True,
        },
    )
    assert world.send(WATCHER, "GET", "/api/v1/audit").status_code == 403
    assert world.send(WATCHER, "GET", "/api/v1/known-hosts/scan").status_code in (403, 405)
    roles = {
        m["username"]: m["role"]
        for m in api.ok(ROOT, "GET", f"/projects/{made['slug']}/members")["items"]
    }
    assert roles == {WATCHER: "admin"}
    # Each sees the projects they are a member of, and no other.
    for caller, visible in ((B_ADMIN, {B}), (WATCHER, {A, made["slug"]}), (DEV, {A, B})):
        listed = api.ok(caller, "GET", "/projects")["items"]
        assert {project["slug"] for project in listed} == visible, caller
    # Their admin role in the new project opens nothing of A's above viewer.
    answer = world.send(WATCHER, "DELETE", f"{p}/repository")
    assert (answer.status_code, error_code(answer)) == (403, "role_required")


def test_host_api_ids_of_one_repository_are_not_found_on_another(service: Service) -> None:
    """The host API's deploy-key ids and hook uids are per repository."""
    base = f"{HOST}/repositories/team"
    for name in ("app", "other"):
        service.app.host.create_repository("team", name)

    def send(method: str, path: str, **kwargs: Any) -> httpx.Response:
        return service.client.request(method, path, headers=as_bearer(BOOTSTRAP_TOKEN), **kwargs)

    key = generate_key().public_key.openssh_line()
    added = send("POST", f"{base}/other/deploy-keys", json={"key": key, "label": "second"})
    assert added.is_success, added.text
    key_id = added.json()["id"]
    hook = send("POST", f"{base}/other/hooks", json={"url": "https://hooks.example/x"})
    assert hook.status_code == 201, hook.text
    uid = quote(hook.json()["uuid"], safe="")
    for method, path, body in (
        ("GET", f"{base}/app/deploy-keys/{key_id}", None),
        ("PUT", f"{base}/app/deploy-keys/{key_id}", {"label": "taken"}),
        ("DELETE", f"{base}/app/deploy-keys/{key_id}", None),
        ("GET", f"{base}/app/hooks/{uid}", None),
        ("GET", f"{base}/app/hooks/{uid}/deliveries", None),
        ("DELETE", f"{base}/app/hooks/{uid}", None),
    ):
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        assert_not_found(send(method, path, **kwargs), f"{method} {path}")
    account = send(
        "POST",
        f"{HOST}/workspaces/team/ssh-keys",
        json={"key": generate_key().public_key.openssh_line(), "label": "person"},
    )
    assert account.status_code == 201, account.text
    account_id = account.json()["uuid"] if "uuid" in account.json() else account.json()["id"]
    service.app.host.create_repository("elsewhere", "repo")
    for base_of_keys in ("/workspaces/elsewhere/ssh-keys", "/users/elsewhere/ssh-keys"):
        path = f"{HOST}{base_of_keys}/{quote(str(account_id), safe='')}"
        assert_not_found(send("DELETE", path), path)
    listed = send("GET", f"{HOST}/workspaces/team/ssh-keys").json()
    assert [item["label"] for item in listed["values"]] == ["person"]
    kept = send("GET", f"{base}/other/deploy-keys/{key_id}").json()
    assert kept["label"] == "second"
    assert send("GET", f"{base}/other/hooks/{uid}").status_code == 200
