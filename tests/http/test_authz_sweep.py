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

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.errors import NotFound
from repolink.platform.webhook_providers import PROVIDERS
from repolink.signing import sign_body
from support.apikit import ANONYMOUS, DEV, OWNER, ROOT, STRANGER, WATCHER, PlatformAPI, platform_api
from support.platformkit import HostedRepos, Platform, granted_key

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
    url = getattr(hosted, repo).url()
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
    document = world.api.client.get("/api/v1/openapi.json").json()
    found = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    return sorted(found, key=lambda op: (LAST.index(op) if op in LAST else -1, op))


def test_every_operation_of_the_document_is_classified(world: World) -> None:
    found = set(operations(world))
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
