"""The one app of ``repolink serve`` (issue 11 §1): where its documents are, the host API in
it, one error shape, one body-size limit with the webhooks' own, and the routers' one list."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter
from pydantic import SecretStr

from repolink.app import Repolink
from repolink.http import service_app
from repolink.http.host_schemas import MAX_BODY_BYTES
from repolink.http.service_app import (
    API_PREFIX,
    DOCS_URL,
    OPENAPI_URL,
    WEBHOOK_MAX_BODY_BYTES,
    ServiceContext,
    create_service_app,
)
from repolink.settings import Settings

with warnings.catch_warnings():
    # Starlette asks for another HTTP client library in its test client; httpx is ours.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "service-app-admin-token-for-tests"
HOST = "/host/api/2.0"


@pytest.fixture
def application(tmp_path: Path) -> Iterator[Repolink]:
    settings = Settings(data_dir=tmp_path / "data", admin_token=SecretStr(TOKEN))
    with Repolink(settings) as app:
        yield app


@pytest.fixture
def client(application: Repolink) -> Iterator[TestClient]:
    app = create_service_app(application, ssh_url_base="ssh://git@git.example.com:2222")
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("root", ["/", API_PREFIX])
def test_the_roots_say_where_the_documents_are(client: TestClient, root: str) -> None:
    answer = client.get(root)
    assert answer.status_code == 200, answer.text
    links = answer.json()["links"]
    assert links["docs"] == {"href": DOCS_URL} == {"href": "/api/docs"}
    assert links["openapi"] == {"href": OPENAPI_URL} == {"href": "/api/v1/openapi.json"}
    assert links["api"] == {"href": "/api/v1"}
    assert links["host_api"] == {"href": HOST}
    for link in links.values():
        assert client.get(link["href"]).status_code == 200, link


def test_one_document_describes_every_api_and_the_page_lists_it(client: TestClient) -> None:
    document = client.get(OPENAPI_URL).json()
    assert document["info"]["title"] == "repolink API"
    paths = document["paths"]
    assert "/healthz" in paths and "/readyz" in paths
    assert f"{HOST}/repositories/{{workspace}}" in paths
    page = client.get(DOCS_URL)
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text.lower()
    for path in paths:
        assert path in page.text


def test_the_host_api_keeps_a_document_of_its_own(client: TestClient) -> None:
    document = client.get(f"{HOST}/openapi.json").json()
    assert document["info"]["title"] == "repolink host API"
    assert document["paths"]
    assert all(path.startswith(HOST) for path in document["paths"])
    page = client.get(f"{HOST}/docs")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert re.search(r'href="/host/api/2\.0/openapi\.json"', page.text)


def test_the_host_api_answers_in_the_service_app(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    created = client.post(f"{HOST}/repositories/team/app", json={}, headers=auth)
    assert created.status_code in (200, 201), created.text
    clone = {link["name"]: link["href"] for link in created.json()["links"]["clone"]}
    # The SSH address of the running server reaches the host's router through the context.
    assert clone["ssh"] == "ssh://git@git.example.com:2222/team/app.git"
    refused = client.get(f"{HOST}/repositories/team/app")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_unknown_addresses_answer_in_the_one_error_shape(client: TestClient) -> None:
    answer = client.get("/api/v1/no-such-thing")
    assert answer.status_code == 404
    assert answer.json() == {
        "type": "error",
        "error": {
            "code": "not_found",
            "message": "there is nothing at this address",
            "hint": "check the path against the API's OpenAPI document",
        },
    }
    assert client.delete("/healthz").json()["error"]["code"] == "method_not_allowed"


def test_bodies_are_capped_before_parsing_and_webhooks_get_their_own_cap(
    client: TestClient,
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    over_api_cap = b"x" * (MAX_BODY_BYTES + 1)
    answer = client.post(f"{HOST}/repositories/team/app", content=over_api_cap, headers=auth)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"
    # Under the webhooks' cap the body reaches the receiver (no project "p": 401) …
    assert client.post("/hooks/generic/p", content=over_api_cap).status_code == 401
    # … and over it, the answer is 413 whatever the path.
    too_big = b"x" * (WEBHOOK_MAX_BODY_BYTES + 1)
    assert client.post("/hooks/generic/p", content=too_big).status_code == 413


def test_routers_come_from_the_one_list(
    application: Repolink, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[ServiceContext] = []

    def build_extra(app: Repolink, context: ServiceContext) -> APIRouter:
        assert app is application
        seen.append(context)
        router = APIRouter()

        @router.get("/extra")
        async def extra() -> dict[str, str]:
            return {"ssh": context.ssh_url_base or ""}

        return router

    monkeypatch.setattr(service_app, "ROUTERS", (*service_app.ROUTERS, build_extra))
    with TestClient(create_service_app(application, ssh_url_base="ssh://git@h:1")) as client:
        assert client.get("/extra").json() == {"ssh": "ssh://git@h:1"}
    assert seen == [ServiceContext(ssh_url_base="ssh://git@h:1")]
