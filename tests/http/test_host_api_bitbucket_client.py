"""The host API driven by a maintained Bitbucket Cloud client: ``atlassian-python-api``.

The client knows only the API's root and a token. It lists workspaces through
``/user/workspaces`` and fetches each, follows a workspace's ``repositories`` link and every
page's ``next``, builds a repository's hook URLs from its ``links.self``, and creates a
repository with the body it sends to Bitbucket. A real uvicorn server answers it: the client
speaks ``requests``, so the Host header and port in every link are the ones it really sent.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from atlassian.bitbucket import Cloud
from pydantic import SecretStr

from repolink.app import Repolink
from repolink.http.service_app import create_service_app
from repolink.settings import Settings
from support.httpkit import serving_app

TOKEN = "configured-admin-token-for-client-tests"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[Cloud, Repolink]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        secret_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
        admin_token=SecretStr(TOKEN),
    )
    with Repolink(settings) as application:
        app = create_service_app(application, ssh_url_base="ssh://git@127.0.0.1:2222")
        with serving_app(app) as base:
            # The client appends "/2.0" itself, as to https://api.bitbucket.org.
            yield Cloud(url=f"{base}/host/api", token=TOKEN, backoff_and_retry=False), application


def test_the_client_walks_workspaces_repositories_and_hooks(
    cloud: tuple[Cloud, Repolink],
) -> None:
    client, application = cloud
    for number in range(12):  # more than a page of ten
        application.host.create_repository("acme", f"repo{number:02d}")
    application.host.create_repository("beta", "tools")

    workspaces = list(client.workspaces.each())
    assert [space.slug for space in workspaces] == ["acme", "beta"]
    acme = workspaces[0]
    assert acme.uuid.startswith("{") and acme.is_private is True

    repositories = list(acme.repositories.each())  # follows next to the last page
    assert [repo.slug for repo in repositories] == [f"repo{n:02d}" for n in range(12)]
    everything = list(client.repositories.each(role="member"))
    assert [repo.get_data("full_name") for repo in everything][-1] == "beta/tools"
    assert len(everything) == 13

    repo = acme.repositories.get("repo03")
    assert repo.get_data("links")["clone"] == [
        {"name": "ssh", "href": "ssh://git@127.0.0.1:2222/acme/repo03.git"}
    ]
    hook = repo.hooks.create(
        url="https://ci.example/hooks/push", description="CI", events=["repo:push"]
    )
    assert hook.webhook_url() == "https://ci.example/hooks/push"
    assert [item.uuid() for item in repo.hooks.each()] == [hook.uuid()]
    assert repo.hooks.get(hook.uuid()).description() == "CI"


def test_the_client_creates_a_repository_with_its_bitbucket_body(
    cloud: tuple[Cloud, Repolink],
) -> None:
    client, application = cloud
    application.host.create_repository("acme", "first")
    acme = client.workspaces.get("acme")
    created = acme.repositories.create(
        "second", project_key="PROJ", is_private=True, fork_policy="no_forks"
    )
    assert created.get_data("full_name") == "acme/second"
    assert acme.repositories.exists("second")
    assert not acme.repositories.exists("third")
    assert [repo.slug for repo in acme.repositories.each()] == ["first", "second"]
    # Repository.update PUTs to the repository's self link; the description is kept.
    created.update(description="made by a Bitbucket client")
    assert created.description == "made by a Bitbucket client"
    assert acme.repositories.get("second").description == "made by a Bitbucket client"
