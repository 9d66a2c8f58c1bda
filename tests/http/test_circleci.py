"""CircleCI-shaped checkout keys over HTTP, in process through the service's one app: the v2 and
v1.1 shapes, project slugs, fingerprints in every spelling a path can carry, tokens, every role
and error, and no private key in any answer."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Principal, Role
from repolink.http.service_app import create_service_app
from repolink.keys import PrivateKey, generate_key, parse_public_key
from repolink.platform.connections import create_connection, parse_connection_url
from repolink.settings import Settings
from repolink.store.key_records import load_private_key
from repolink.store.models import KeyRecord
from repolink.store.models.platform import KEY_GENERATED
from support.accountskit import FAST_HASHER, Account, make_account
from support.platformkit import WORKSPACE, HostedRepos, Platform, close_shared_connection

pytestmark = pytest.mark.databases

with warnings.catch_warnings():
    # Starlette asks for another HTTP client library in its test client; httpx is ours.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ADMIN_TOKEN = "circleci-admin-token-for-tests"
V2 = "/api/v2/project"
V11 = "/api/v1.1/project"
SLUG = "gh/team/app"
V2_FIELDS = {"public-key", "type", "fingerprint", "preferred", "created-at"}
V11_FIELDS = {"public_key", "type", "fingerprint", "preferred", "time"}


def awkward_key() -> PrivateKey:
    """A key whose SHA256 fingerprint holds both '/' and '+', the characters a path mangles."""
    while True:
        key = generate_key()
        body = key.public_key.sha256_fingerprint.removeprefix("SHA256:")
        if "/" in body and "+" in body:
            return key


class Caller:
    """A test client that sends one token, and keeps every answer for the leak sweep."""

    def __init__(self, client: TestClient, token: str | None, answers: list[str]) -> None:
        self._client = client
        self._headers = {"Circle-Token": token} if token else {}
        self._answers = answers

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        answer = self._client.request(method, path, headers=headers, **kwargs)
        self._answers.append(answer.text)
        return answer


class World:
    def __init__(self, application: Repolink, client: TestClient, deploy_key: PrivateKey) -> None:
        self.application = application
        self.deploy_key = deploy_key
        self.answers: list[str] = []
        self.accounts: dict[str, Account] = {}
        self._client = client

    def as_(self, name: str | None) -> Caller:
        if name is None:
            return Caller(self._client, None, self.answers)
        if name == "site":
            return Caller(self._client, ADMIN_TOKEN, self.answers)
        return Caller(self._client, self.accounts[name].token, self.answers)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Project ``app`` connected (no fetch) to github.com's team/app with a deploy key;
    ``alice`` its admin, ``bob`` a member, ``vic`` a viewer, ``eve`` no member at all."""
    settings = Settings(data_dir=tmp_path / "data", admin_token=SecretStr(ADMIN_TOKEN))
    with Repolink(settings, password_hasher=FAST_HASHER) as application:
        accounts = {name: make_account(application, name) for name in ("alice", "bob", "vic")}
        accounts["eve"] = make_account(application, "eve")
        application.access.create_project(accounts["alice"].principal, "App", slug="app")
        alice = accounts["alice"].principal
        application.access.set_member(alice, "app", "bob", Role.MEMBER)
        application.access.set_member(alice, "app", "vic", Role.VIEWER)
        deploy_key = awkward_key()
        with application.store.session() as session:
            create_connection(
                session,
                application.vault(),
                "app",
                parse_connection_url("git@github.com:team/app.git"),
                deploy_key,
                origin=KEY_GENERATED,
            )
        with TestClient(create_service_app(application), raise_server_exceptions=False) as client:
            made = World(application, client, deploy_key)
            made.accounts = accounts
            yield made
            _sweep_for_private_keys(made)


def _sweep_for_private_keys(world: World) -> None:
    """No answer holds a private key of the project, nor any 16-character piece of its base64
    body — but the pieces that merely repeat the public key, which the file embeds and the
    answers carry on purpose."""
    with world.application.store.session() as session:
        records = session.query(KeyRecord).filter(KeyRecord.private_key_encrypted.is_not(None))
        keys = [load_private_key(session, world.application.vault(), r.id) for r in records]
    answers = "\n".join(world.answers)
    assert "PRIVATE KEY" not in answers
    for key in [*keys, world.deploy_key]:
        body = "".join(key.to_openssh().decode().splitlines()[1:-1])
        public = key.public_key.openssh_line(with_comment=False)
        pieces = {body[i : i + 16] for i in range(len(body) - 15)} - {
            public[i : i + 16] for i in range(len(public) - 15)
        }
        assert len(pieces) > 100
        assert not any(piece in answers for piece in pieces)


def error(answer: httpx.Response) -> str:
    body = answer.json()
    assert body["type"] == "error" and set(body["error"]) == {"code", "message", "hint"}
    code: str = body["error"]["code"]
    return code


# -- reading ------------------------------------------------------------------------------------


def test_v2_lists_the_deploy_key_as_circleci_does(world: World) -> None:
    answer = world.as_("vic")("GET", f"{V2}/{SLUG}/checkout-key")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["next_page_token"] is None
    [key] = body["items"]
    assert set(key) == V2_FIELDS
    public = world.deploy_key.public_key
    assert key["public-key"] == public.openssh_line(with_comment=False)
    assert key["type"] == "deploy-key" and key["preferred"] is True
    assert key["fingerprint"] == public.md5_fingerprint.removeprefix("MD5:")
    assert key["created-at"].endswith("Z")
    sha = world.as_("vic")("GET", f"{V2}/{SLUG}/checkout-key", params={"digest": "sha256"})
    assert sha.json()["items"][0]["fingerprint"] == public.sha256_fingerprint


@pytest.mark.parametrize(
    "slug", ["gh/team/app", "github/Team/App", "bb/team/app.git", "gh%2Fteam%2Fapp", "app"]
)
def test_every_spelling_of_the_project_slug_names_the_project(world: World, slug: str) -> None:
    answer = world.as_("vic")("GET", f"{V2}/{slug}/checkout-key")
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["items"]) == 1


def test_both_token_headers_are_accepted_and_nothing_else(world: World) -> None:
    token = world.accounts["vic"].token
    path = f"{V2}/{SLUG}/checkout-key"
    bearer = world.as_(None)("GET", path, headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200
    anonymous = world.as_(None)("GET", path)
    assert (anonymous.status_code, error(anonymous)) == (401, "unauthorized")
    wrong = world.as_(None)("GET", path, headers={"Circle-Token": "rlp_not-a-token"})
    assert (wrong.status_code, error(wrong)) == (401, "unauthorized")


def test_a_fingerprint_is_found_in_every_spelling_a_path_carries(world: World) -> None:
    public = world.deploy_key.public_key
    sha, md5 = public.sha256_fingerprint, public.md5_fingerprint.removeprefix("MD5:")
    spellings = [
        md5,
        quote(md5, safe=""),
        "MD5:" + md5,
        quote(sha, safe=""),  # SHA256%3A…, '/' as %2F and '+' as %2B
        quote(sha, safe="/"),  # '/' left as it is
        sha,
    ]
    for spelling in spellings:
        answer = world.as_("vic")("GET", f"{V2}/{SLUG}/checkout-key/{spelling}")
        assert answer.status_code == 200, (spelling, answer.text)
        assert answer.json()["fingerprint"] == md5
    digest = world.as_("vic")(
        "GET", f"{V2}/{SLUG}/checkout-key/{quote(sha, safe='')}", params={"digest": "sha256"}
    )
    assert digest.json()["fingerprint"] == sha
    v11 = world.as_("vic")("GET", f"{V11}/gh/team/app/checkout-key/{quote(sha, safe='')}")
    assert v11.status_code == 200 and v11.json()["fingerprint"] == md5


def test_reading_errors(world: World) -> None:
    vic = world.as_("vic")
    other = generate_key().public_key.md5_fingerprint.removeprefix("MD5:")
    cases = [
        (vic("GET", f"{V2}/{SLUG}/checkout-key/{other}"), 404, "checkout_key_not_found"),
        (vic("GET", f"{V2}/{SLUG}/checkout-key/not-a-fingerprint"), 400, "fingerprint_invalid"),
        (vic("GET", f"{V2}/gh/team/none/checkout-key"), 404, "project_not_found"),
        (vic("GET", f"{V2}/svn/team/app/checkout-key"), 400, "project_slug_invalid"),
        (vic("GET", f"{V2}/nowhere/checkout-key"), 404, "project_not_found"),
        (
            vic("GET", f"{V2}/{SLUG}/checkout-key", params={"digest": "sha1"}),
            400,
            "invalid_request",
        ),
        # A project one is no member of is invisible, by any name.
        (world.as_("eve")("GET", f"{V2}/{SLUG}/checkout-key"), 404, "project_not_found"),
        (world.as_("eve")("GET", f"{V2}/app/checkout-key"), 404, "project_not_found"),
    ]
    for answer, status, code in cases:
        assert (answer.status_code, error(answer)) == (status, code), answer.text
    assert "digest" in cases[5][0].json()["error"]["message"]


def test_an_ambiguous_slug_is_a_conflict_naming_the_projects(world: World) -> None:
    site = world.as_("site")
    application = world.application
    application.access.create_project(LOCAL_ADMIN, "Twin", slug="twin")
    with application.store.session() as session:
        create_connection(
            session,
            application.vault(),
            "twin",
            parse_connection_url("git@gitlab.com:team/app.git"),
            generate_key(),
            origin=KEY_GENERATED,
        )
    answer = site("GET", f"{V2}/{SLUG}/checkout-key")
    assert (answer.status_code, error(answer)) == (409, "project_slug_ambiguous")
    assert "app, twin" in answer.json()["error"]["message"]
    # Only the projects a caller can see count: for vic, it is app alone.
    assert world.as_("vic")("GET", f"{V2}/{SLUG}/checkout-key").status_code == 200
    assert site("GET", f"{V2}/twin/checkout-key").status_code == 200


# -- creating and deleting ----------------------------------------------------------------------


def test_a_member_makes_their_user_key_and_it_becomes_preferred(world: World) -> None:
    bob = world.as_("bob")
    made = bob("POST", f"{V2}/{SLUG}/checkout-key", json={"type": "user-key"})
    assert made.status_code == 201, made.text
    key = made.json()
    assert set(key) == V2_FIELDS
    assert (key["type"], key["preferred"]) == ("github-user-key", True)
    assert key["public-key"].startswith("ssh-ed25519 ")
    listed = bob("GET", f"{V2}/{SLUG}/checkout-key").json()["items"]
    assert [(item["type"], item["preferred"]) for item in listed] == [
        ("github-user-key", True),
        ("deploy-key", False),
    ]
    again = bob("POST", f"{V2}/{SLUG}/checkout-key", json={"type": "user-key"})
    assert (again.status_code, error(again)) == (409, "user_key_exists")
    # The viewer may not make one; a token of no user cannot own one.
    viewer = world.as_("vic")("POST", f"{V2}/{SLUG}/checkout-key", json={"type": "user-key"})
    assert (viewer.status_code, error(viewer)) == (403, "role_required")
    site = world.as_("site")("POST", f"{V2}/{SLUG}/checkout-key", json={"type": "user-key"})
    assert (site.status_code, error(site)) == (403, "user_key_needs_user")


def test_user_keys_are_deleted_by_their_user_or_an_admin(world: World) -> None:
    path = f"{V2}/{SLUG}/checkout-key"
    bob_key = world.as_("bob")("POST", path, json={"type": "user-key"}).json()["fingerprint"]
    alice_key = world.as_("alice")("POST", path, json={"type": "user-key"}).json()["fingerprint"]
    refused = world.as_("bob")("DELETE", f"{path}/{alice_key}")
    assert (refused.status_code, error(refused)) == (403, "role_required")
    viewer = world.as_("vic")("DELETE", f"{path}/{bob_key}")
    assert (viewer.status_code, error(viewer)) == (403, "role_required")
    deleted = world.as_("bob")("DELETE", f"{path}/{bob_key}")
    assert (deleted.status_code, deleted.json()) == (200, {"message": "ok"})
    assert world.as_("alice")("DELETE", f"{path}/{alice_key}").status_code == 200
    gone = world.as_("alice")("GET", f"{path}/{alice_key}")
    assert (gone.status_code, error(gone)) == (404, "checkout_key_not_found")
    actions = [entry.action for entry in world.application.audit.entries(LOCAL_ADMIN).items]
    assert actions.count("checkout_key.create") == 2
    assert actions.count("checkout_key.delete") == 2


def test_deploy_keys_are_an_admins_and_go_through_a_rotation(world: World) -> None:
    path = f"{V2}/{SLUG}/checkout-key"
    member = world.as_("bob")("POST", path, json={"type": "deploy-key"})
    assert (member.status_code, error(member)) == (403, "role_required")
    made = world.as_("alice")("POST", path, json={"type": "deploy-key"})
    assert made.status_code == 201, made.text
    new = made.json()
    assert (new["type"], new["preferred"]) == ("deploy-key", False)
    again = world.as_("alice")("POST", path, json={"type": "deploy-key"})
    assert (again.status_code, error(again)) == (409, "rotation_pending")
    by_member = world.as_("bob")("DELETE", f"{path}/{new['fingerprint']}")
    assert (by_member.status_code, error(by_member)) == (403, "role_required")
    # Deleting the pending key aborts the rotation; the deploy key itself cannot go alone.
    assert world.as_("alice")("DELETE", f"{path}/{new['fingerprint']}").status_code == 200
    current = world.deploy_key.public_key.md5_fingerprint.removeprefix("MD5:")
    kept = world.as_("alice")("DELETE", f"{path}/{current}")
    assert (kept.status_code, error(kept)) == (409, "deploy_key_required")


def test_bad_bodies_name_the_field(world: World) -> None:
    path = f"{V2}/{SLUG}/checkout-key"
    for body in ({"type": "root-key"}, {}, {"type": generate_key().to_openssh().decode()}):
        answer = world.as_("alice")("POST", path, json=body)
        assert (answer.status_code, error(answer)) == (400, "invalid_request")
        assert "type" in answer.json()["error"]["message"]


# -- v1.1 ---------------------------------------------------------------------------------------


def test_v11_has_its_own_names_and_a_bare_list(world: World) -> None:
    path = f"{V11}/github/team/app/checkout-key"
    made = world.as_("bob")("POST", path, json={"type": "github-user-key"})
    assert made.status_code == 201, made.text
    key = made.json()
    assert set(key) == V11_FIELDS and key["type"] == "github-user-key" and key["preferred"]
    listed = world.as_("vic")("GET", path).json()
    assert isinstance(listed, list)
    assert [(item["type"], item["preferred"]) for item in listed] == [
        ("github-user-key", True),
        ("deploy-key", False),
    ]
    assert all(set(item) == V11_FIELDS for item in listed)
    one = world.as_("vic")("GET", f"{path}/{key['fingerprint']}")
    assert one.json() == key
    deleted = world.as_("bob")("DELETE", f"{path}/{key['fingerprint']}")
    assert (deleted.status_code, deleted.json()) == (200, {"message": "OK"})
    outsider = world.as_("eve")("GET", path)
    assert (outsider.status_code, error(outsider)) == (404, "project_not_found")


def test_the_document_describes_both_versions(world: World) -> None:
    paths = world.as_(None)("GET", "/api/v1/openapi.json").json()["paths"]
    assert set(paths[f"{V2}/{{project_slug}}/checkout-key"]) == {"get", "post"}
    assert set(paths[f"{V2}/{{project_slug}}/checkout-key/{{fingerprint}}"]) == {"get", "delete"}
    assert f"{V11}/{{vcs_type}}/{{org}}/{{repo}}/checkout-key/{{fingerprint}}" in paths


def test_key_bodies_are_base64_of_an_ssh_key(world: World) -> None:
    key = world.as_("vic")("GET", f"{V2}/{SLUG}/checkout-key").json()["items"][0]
    kind, blob = key["public-key"].split()
    assert kind == "ssh-ed25519" and base64.b64decode(blob)[4:15] == b"ssh-ed25519"


# -- a real fetch over the API: the preferred key is the one used --------------------------------


def test_fetches_through_the_api_use_the_users_key(
    platform: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    application = platform.app
    user = application.users.create(LOCAL_ADMIN, "alice")  # no password: a token's user
    _, token = application.api_tokens.create(LOCAL_ADMIN, "alice", "ci")
    application.access.create_project(Principal(user.id, "alice", False), "Other", slug="other")
    # Connected with a deploy key the repository never gets: the first fetch fails.
    assert not platform.connect("other", hosted.other.url(), create=False).ok
    answers: list[str] = []
    with TestClient(create_service_app(application), raise_server_exceptions=False) as client:
        call = Caller(client, token, answers)
        made = call("POST", f"{V2}/bb/team/other/checkout-key", json={"type": "user-key"})
        assert made.status_code == 201, made.text
        public_key = made.json()["public-key"]
        public_key_fingerprint = parse_public_key(public_key).key.sha256_fingerprint
        hosted.host.service.add_access_key(WORKSPACE, "other", public_key, label="alice")
        try:
            done = call("POST", "/api/v1/projects/other/fetch", params={"wait": "true"})
            assert done.status_code == 200, done.text
            assert done.json()["errors"] == [] and done.json()["new_commits"]
        finally:
            hosted.host.service.remove_access_key(WORKSPACE, "other", public_key_fingerprint)
        key = application.checkout_keys.get_key("other", made.json()["fingerprint"])
        assert key.preferred and key.last_used_at is not None
        # A new SSH connection (the shared one authenticated the key while it was granted).
        close_shared_connection(platform, "other", key.fingerprint_sha256, tmp_path / "ssh")
        failed = call("POST", "/api/v1/projects/other/fetch", params={"wait": "true"})
        assert [error["code"] for error in failed.json()["errors"]] == ["auth_failed"]
    assert "PRIVATE KEY" not in "".join(answers)
