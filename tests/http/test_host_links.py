"""The host API navigated as Bitbucket Cloud clients do: by ``links`` and by pages' ``next``.

A client builds no URL of its own beyond the API root: it lists workspaces, follows a
workspace's ``repositories`` link, follows ``next`` to the last page, and follows a
repository's ``hooks`` link to create a webhook. Every href is absolute and answers.
"""

from __future__ import annotations

import base64
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from repolink.app import Repolink
from repolink.http.host_api import API_PREFIX, create_host_api
from repolink.http.service_app import create_service_app
from repolink.settings import Settings
from support.hostkit import make_source_repository

with warnings.catch_warnings():
    # Starlette asks for another HTTP client library in its test client; httpx is ours.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "configured-admin-token-for-link-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = f"http://testserver{API_PREFIX}"


class Client:
    """A Bitbucket client in miniature: the API root, and absolute URLs from the answers."""

    def __init__(self, client: TestClient, application: Repolink) -> None:
        self.http = client
        self.application = application

    def get(self, url: str, **params: Any) -> httpx.Response:
        return self.http.get(url, headers=AUTH, params=params or None)

    def post(self, url: str, body: Any = None) -> httpx.Response:
        return self.http.post(url, headers=AUTH, json=body)

    def ok(self, url: str) -> Any:
        response = self.get(url)
        assert response.status_code == 200, (url, response.text)
        return response.json()

    def every_value(self, url: str) -> list[Any]:
        """Every item of a paginated list, following ``next`` as Bitbucket clients do."""
        values: list[Any] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            assert next_url.startswith(ROOT), next_url  # absolute, on this server
            assert next_url not in seen, "a next link must lead on"
            seen.add(next_url)
            page = self.ok(next_url)
            assert page["pagelen"] >= len(page["values"])
            values.extend(page["values"])
            next_url = page["next"]
        assert len(values) == page["size"]
        return values


def make_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
        admin_token=SecretStr(TOKEN),
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Repolink(make_settings(tmp_path)) as application:
        app = create_host_api(application, ssh_url_base="ssh://git@git.example:2222")
        with TestClient(app, raise_server_exceptions=False) as test_client:
            yield Client(test_client, application)


def create(client: Client, workspace: str, slug: str, body: Any = None) -> Any:
    response = client.post(f"{ROOT}/repositories/{workspace}/{slug}", body)
    assert response.status_code == 200, response.text
    return response.json()


def hrefs(document: Any) -> Iterator[str]:
    """Every ``href`` anywhere in an answer."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "href" and isinstance(value, str):
                yield value
            else:
                yield from hrefs(value)
    elif isinstance(document, list):
        for item in document:
            yield from hrefs(item)


# -- workspaces ----------------------------------------------------------------------------


def test_workspaces_are_objects_with_links(client: Client) -> None:
    create(client, "acme", "widgets")
    create(client, "beta", "tools")
    listed = client.ok(f"{ROOT}/workspaces")
    assert [space["slug"] for space in listed["values"]] == ["acme", "beta"]
    acme = listed["values"][0]
    assert acme["type"] == "workspace"
    assert acme["name"] == "acme"
    assert acme["is_private"] is True
    assert acme["uuid"].startswith("{") and acme["uuid"].endswith("}")
    assert acme["created_on"].endswith("Z")
    assert acme["links"] == {
        "self": {"href": f"{ROOT}/workspaces/acme"},
        "html": {"href": f"{ROOT}/workspaces/acme"},
        "repositories": {"href": f"{ROOT}/repositories/acme"},
    }
    assert client.ok(acme["links"]["self"]["href"]) == acme
    assert listed["values"][1]["uuid"] != acme["uuid"]

    repositories = client.every_value(acme["links"]["repositories"]["href"])
    assert [repo["full_name"] for repo in repositories] == ["acme/widgets"]
    assert repositories[0]["workspace"]["uuid"] == acme["uuid"]

    # The listing Bitbucket's clients now call: the caller's access to each workspace.
    access = client.ok(f"{ROOT}/user/workspaces")["values"]
    assert [item["workspace"]["slug"] for item in access] == ["acme", "beta"]
    assert access[0]["type"] == "workspace_access"
    assert access[0]["workspace"]["links"] == acme["links"]


def test_a_missing_workspace_is_404(client: Client) -> None:
    response = client.get(f"{ROOT}/workspaces/nobody")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "workspace_not_found"
    invalid = client.get(f"{ROOT}/workspaces/Not%20One")
    assert invalid.status_code == 400
    assert invalid.json()["error"]["code"] == "workspace_invalid"


# -- paginated lists -----------------------------------------------------------------------


def test_a_client_follows_next_through_a_workspace_to_the_last_page(client: Client) -> None:
    slugs = [f"repo{number:02d}" for number in range(23)]
    for slug in slugs:
        create(client, "acme", slug)
    first = client.ok(f"{ROOT}/repositories/acme")
    assert (first["pagelen"], first["size"], first["page"]) == (10, 23, 1)
    assert first["previous"] is None
    assert first["next"] == f"{ROOT}/repositories/acme?page=2"
    listed = client.every_value(f"{ROOT}/repositories/acme")
    assert [repo["slug"] for repo in listed] == slugs

    last = client.ok(f"{ROOT}/repositories/acme?pagelen=5&page=5")
    assert [repo["slug"] for repo in last["values"]] == slugs[20:]
    assert last["next"] is None
    # Other query parameters stay in the links; only the page number changes.
    assert last["previous"] == f"{ROOT}/repositories/acme?pagelen=5&page=4"
    beyond = client.ok(f"{ROOT}/repositories/acme?pagelen=5&page=9")
    assert beyond["values"] == [] and beyond["next"] is None
    assert beyond["previous"] == f"{ROOT}/repositories/acme?pagelen=5&page=5"


@pytest.mark.parametrize("query", ["", "?role=member", "?role=admin", "?role=owner"])
def test_repositories_of_every_workspace_the_caller_may_see(client: Client, query: str) -> None:
    for workspace, slug in [("beta", "b1"), ("acme", "a2"), ("acme", "a1"), ("zeta", "z")]:
        create(client, workspace, slug)
    listed = client.every_value(f"{ROOT}/repositories{query}{'&' if query else '?'}pagelen=3")
    assert [repo["full_name"] for repo in listed] == ["acme/a1", "acme/a2", "beta/b1", "zeta/z"]


def test_an_unknown_role_is_400_naming_the_parameter(client: Client) -> None:
    response = client.get(f"{ROOT}/repositories", role="everyone")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "query.role" in error["message"] and "everyone" not in error["message"]


def test_every_paginated_list_links_its_next_page_absolutely(client: Client, make_key: Any) -> None:
    for number in range(3):
        create(client, f"ws{number}", "app")
    repo = create(client, "ws0", "many")
    for number in range(3):
        added = client.post(
            repo["links"]["deploy-keys"]["href"],
            {"key": make_key(f"k{number}").public_line, "label": f"key {number}"},
        )
        assert added.status_code == 200, added.text
        hook = client.post(repo["links"]["hooks"]["href"], {"url": f"http://127.0.0.1:9/{number}"})
        assert hook.status_code == 201, hook.text
        account = client.post(
            f"{ROOT}/workspaces/ws0/ssh-keys",
            {"key": make_key(f"person{number}").public_line, "label": "laptop"},
        )
        assert account.status_code == 201, account.text
    lists = {
        f"{ROOT}/workspaces": 3,
        f"{ROOT}/user/workspaces": 3,
        f"{ROOT}/repositories": 4,
        repo["links"]["deploy-keys"]["href"]: 3,
        repo["links"]["hooks"]["href"]: 3,
        f"{ROOT}/workspaces/ws0/ssh-keys": 3,
    }
    for url, size in lists.items():
        first = client.ok(f"{url}?pagelen=2")
        assert first["next"] == f"{url}?pagelen=2&page=2", url
        assert len(client.every_value(f"{url}?pagelen=2")) == size, url


# -- repositories and what they link to --------------------------------------------------------


def test_repository_object_has_bitbucket_fields_and_absolute_links(client: Client) -> None:
    repo = create(client, "acme", "widgets")
    assert repo["type"] == "repository"
    assert repo["full_name"] == "acme/widgets"
    assert (repo["scm"], repo["is_private"], repo["mainbranch"]) == ("git", True, None)
    assert repo["workspace"]["slug"] == repo["owner"]["username"] == "acme"
    assert repo["owner"]["uuid"] == repo["workspace"]["uuid"]
    assert repo["links"] == {
        "self": {"href": f"{ROOT}/repositories/acme/widgets"},
        "html": {"href": f"{ROOT}/repositories/acme/widgets"},
        "clone": [{"name": "ssh", "href": "ssh://git@git.example:2222/acme/widgets.git"}],
        "hooks": {"href": f"{ROOT}/repositories/acme/widgets/hooks"},
        "deploy-keys": {"href": f"{ROOT}/repositories/acme/widgets/deploy-keys"},
    }
    assert client.ok(repo["links"]["self"]["href"]) == repo


def test_a_client_creates_a_hook_where_the_repository_links_it(client: Client) -> None:
    repo = create(client, "acme", "w")
    followed = client.ok(repo["links"]["self"]["href"])
    created = client.post(
        followed["links"]["hooks"]["href"],
        {"url": "https://ci.example/hook", "description": "CI", "events": ["repo:push"]},
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["subject"]["full_name"] == "acme/w"
    assert hook["subject"]["links"]["self"]["href"] == repo["links"]["self"]["href"]
    assert client.ok(hook["links"]["self"]["href"]) == hook
    listed = client.every_value(followed["links"]["hooks"]["href"])
    assert listed == [hook]


def test_no_link_in_any_answer_leads_to_an_error(client: Client, make_key: Any) -> None:
    repo = create(client, "acme", "widgets")
    key = client.post(
        repo["links"]["deploy-keys"]["href"], {"key": make_key("ci").public_line, "label": "CI"}
    ).json()
    hook = client.post(repo["links"]["hooks"]["href"], {"url": "http://127.0.0.1:9/"}).json()
    answers = [
        repo,
        key,
        hook,
        client.ok(f"{ROOT}/workspaces"),
        client.ok(f"{ROOT}/user/workspaces"),
        client.ok(f"{ROOT}/repositories?role=member"),
    ]
    followed = set()
    for answer in answers:
        for href in hrefs(answer):
            if href.startswith("ssh://"):
                continue
            assert href.startswith(ROOT), href
            if href not in followed:
                followed.add(href)
                client.ok(href)
    repo_href = f"{ROOT}/repositories/acme/widgets"
    assert followed == {
        f"{ROOT}/workspaces/acme",
        f"{ROOT}/repositories/acme",
        repo_href,
        f"{repo_href}/hooks",
        f"{repo_href}/hooks/{quote(hook['uuid'], safe='')}",
        f"{repo_href}/deploy-keys",
        f"{repo_href}/deploy-keys/{key['id']}",
    }


def test_links_name_the_address_the_client_used(tmp_path: Path) -> None:
    with Repolink(make_settings(tmp_path)) as application:
        app = create_host_api(application)
        base = "https://git.example.com:8443"
        with TestClient(app, base_url=base) as test_client:
            created = test_client.post(f"{API_PREFIX}/repositories/acme/widgets", headers=AUTH)
            assert created.status_code == 200, created.text
            repo = created.json()
            for slug in ("a", "b"):
                test_client.post(f"{API_PREFIX}/repositories/acme/{slug}", headers=AUTH)
            page = test_client.get(f"{API_PREFIX}/repositories/acme?pagelen=1", headers=AUTH)
    assert repo["links"]["self"]["href"] == f"{base}{API_PREFIX}/repositories/acme/widgets"
    assert repo["links"]["clone"] == []  # no SSH address known: no clone link at all
    assert page.json()["next"] == f"{base}{API_PREFIX}/repositories/acme?pagelen=1&page=2"


def test_mainbranch_appears_with_the_first_push(client: Client, tmp_path: Path) -> None:
    repo = create(client, "acme", "widgets")
    assert repo["mainbranch"] is None
    info = client.application.host.get_repository("acme", "widgets")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "A",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "A",
        "GIT_COMMITTER_EMAIL": "a@example.com",
    }
    source = tmp_path / "src"
    make_source_repository(source, env, commits=1)
    bare = client.application.host.repository_path(info)
    subprocess.run(
        ["git", "-C", str(source), "push", "-q", str(bare), "main"],
        env=env,
        check=True,
        capture_output=True,
    )
    shown = client.ok(repo["links"]["self"]["href"])
    assert shown["mainbranch"] == {"type": "branch", "name": "main"}
    assert client.every_value(f"{ROOT}/repositories/acme")[0]["mainbranch"]["name"] == "main"


# -- creation bodies -----------------------------------------------------------------------

BITBUCKET_REPOSITORY_BODY = {
    "scm": "git",
    "name": "Widgets",
    "is_private": True,
    "description": "the widget factory",
    "fork_policy": "no_public_forks",
    "project": {"key": "PROJ"},
    "language": "python",
    "has_issues": False,
    "has_wiki": False,
    "mainbranch": {"name": "main"},
    "website": "https://example.com",
    "some_future_field": {"nested": [1, 2]},
}


def test_creation_accepts_the_fields_bitbucket_documents(client: Client) -> None:
    by_path = client.post(f"{ROOT}/repositories/acme/widgets", BITBUCKET_REPOSITORY_BODY)
    assert by_path.status_code == 200, by_path.text
    assert by_path.json()["full_name"] == "acme/widgets"
    assert by_path.json()["description"] == "the widget factory"  # kept; the rest ignored
    assert client.ok(f"{ROOT}/repositories/acme/widgets")["description"] == "the widget factory"
    by_body = client.post(f"{ROOT}/repositories/acme", {**BITBUCKET_REPOSITORY_BODY, "slug": "x"})
    assert by_body.status_code == 200, by_body.text
    # What the atlassian-python-api client sends to create a repository.
    minimal = client.post(f"{ROOT}/repositories/acme/y", {"scm": "git", "is_private": False})
    assert minimal.status_code == 200, minimal.text
    assert minimal.json()["is_private"] is True  # every hosted repository is private


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scm": "hg"}, "body.scm"),
        ({"fork_policy": "sometimes"}, "body.fork_policy"),
        ({"is_private": "maybe"}, "body.is_private"),
        ({"project": "PROJ"}, "body.project"),
        ({"description": "x" * 4001}, "body.description"),
    ],
)
def test_creation_refuses_a_wrong_value_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"{ROOT}/repositories/acme/widgets", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["message"]
    assert client.get(f"{ROOT}/repositories/acme/widgets").status_code == 404


def test_links_are_right_in_the_one_service_app(tmp_path: Path) -> None:
    with Repolink(make_settings(tmp_path)) as application:
        app = create_service_app(application, ssh_url_base="ssh://git@git.example:2222")
        with TestClient(app, raise_server_exceptions=False) as test_client:
            client = Client(test_client, application)
            repo = create(client, "acme", "widgets")
            assert repo["links"]["self"]["href"] == f"{ROOT}/repositories/acme/widgets"
            assert repo["links"]["clone"][0]["href"].startswith("ssh://git@git.example:2222/")
            for href in hrefs(repo):
                if not href.startswith("ssh://"):
                    client.ok(href)
            spaces = client.every_value(f"{ROOT}/workspaces")
            assert [space["links"]["self"]["href"] for space in spaces] == [
                f"{ROOT}/workspaces/acme"
            ]


def test_put_creates_a_missing_repository_and_updates_an_existing_one(client: Client) -> None:
    url = f"{ROOT}/repositories/acme/widgets"
    created = client.http.put(url, headers=AUTH, json={"scm": "git", "description": "first"})
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "first"
    assert created.json()["links"]["self"]["href"] == url

    updated = client.http.put(url, headers=AUTH, json={"description": "second", "name": "W"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["description"] == "second"
    assert updated.json()["uuid"] == created.json()["uuid"]  # the same repository
    kept = client.http.put(url, headers=AUTH)  # no body: nothing to change
    assert kept.status_code == 200 and kept.json()["description"] == "second"
    assert client.ok(url)["description"] == "second"

    control = client.http.put(url, headers=AUTH, json={"description": "bell\x07"})
    assert control.status_code == 400
    assert control.json()["error"]["code"] == "description_invalid"
    assert client.ok(url)["description"] == "second"
