"""Who calls the HTTP APIs: a bearer or Circle-Token token authenticated before the body is
read, the principal handed to routes, a requirement checked before the body too."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel, SecretStr

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Principal
from repolink.http.app import create_app
from repolink.http.auth import current_principal, principal_route_class
from repolink.settings import Settings
from support.accountskit import FAST_HASHER, Account, make_account

pytestmark = pytest.mark.databases

ADMIN_TOKEN = "bootstrap-admin-token-for-tests"


class Body(BaseModel):
    count: int


@pytest.fixture
def application(tmp_path: Path) -> Iterator[Repolink]:
    settings = Settings(
        data_dir=tmp_path / "data",
        secret_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
        admin_token=SecretStr(ADMIN_TOKEN),
    )
    with Repolink(settings, password_hasher=FAST_HASHER) as app:
        yield app


@pytest.fixture
def client(application: Repolink) -> Iterator[TestClient]:
    app = create_app(title="t", description="t", prefix="/api", max_body_bytes=1024)
    router = APIRouter(prefix="/api", route_class=principal_route_class(application))

    @router.get("/who")
    def who(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, object]:
        return {"username": principal.username, "site_admin": principal.site_admin}

    @router.post("/body")
    def body(payload: Body) -> dict[str, int]:
        return {"count": payload.count}

    admins = APIRouter(
        prefix="/api/admin",
        route_class=principal_route_class(
            application, require=application.access.require_site_admin
        ),
    )

    @admins.post("/body")
    def admin_body(payload: Body) -> dict[str, int]:
        return {"count": payload.count}

    app.include_router(router)
    app.include_router(admins)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def jane(application: Repolink) -> Account:
    return make_account(application, "jane")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_users_token_is_its_principal(client: TestClient, jane: Account) -> None:
    response = client.get("/api/who", headers=bearer(jane.token))
    assert response.json() == {"username": "jane", "site_admin": False}


def test_the_circle_token_header_works_too(client: TestClient, jane: Account) -> None:
    response = client.get("/api/who", headers={"Circle-Token": jane.token})
    assert response.json() == {"username": "jane", "site_admin": False}


def test_the_settings_token_is_a_site_admin(client: TestClient) -> None:
    response = client.get("/api/who", headers=bearer(ADMIN_TOKEN))
    assert response.json() == {"username": "admin-token", "site_admin": True}


def test_missing_wrong_revoked_and_expired_tokens_get_one_401_before_the_body(
    application: Repolink, client: TestClient, jane: Account
) -> None:
    revoked = make_account(application, "joe")
    (info,) = application.api_tokens.list(LOCAL_ADMIN, username="joe")
    application.api_tokens.revoke(LOCAL_ADMIN, info.id)
    attempts: list[dict[str, str]] = [
        {},
        bearer("rlp_" + "x" * 43),
        bearer(jane.token[:-1]),
        bearer(revoked.token),
        {"Circle-Token": "wrong"},
        {"Authorization": f"Basic {jane.token}"},
    ]
    answers = set()
    for headers in attempts:
        # An unreadable body too: the refusal must not depend on it.
        response = client.post("/api/body", headers=headers, content=b"{not json")
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthorized"
        answers.add(response.content)
    assert len(answers) == 1


def test_a_token_revoked_between_two_requests_is_refused_at_the_second(
    application: Repolink, client: TestClient, jane: Account
) -> None:
    assert client.get("/api/who", headers=bearer(jane.token)).status_code == 200
    assert application.api_tokens.known(jane.token) is not None  # the next one from memory
    (info,) = application.api_tokens.list(LOCAL_ADMIN, username="jane")
    application.api_tokens.revoke(LOCAL_ADMIN, info.id)
    assert client.get("/api/who", headers=bearer(jane.token)).status_code == 401


def test_a_user_deleted_between_two_requests_is_refused_at_the_second(
    application: Repolink, client: TestClient, jane: Account
) -> None:
    assert client.get("/api/who", headers=bearer(jane.token)).status_code == 200
    application.users.delete(LOCAL_ADMIN, "jane")
    assert client.get("/api/who", headers=bearer(jane.token)).status_code == 401


def test_a_good_token_reaches_body_validation(client: TestClient, jane: Account) -> None:
    assert client.post("/api/body", headers=bearer(jane.token), json={"count": 2}).json() == {
        "count": 2
    }
    response = client.post("/api/body", headers=bearer(jane.token), content=b"{not json")
    assert response.status_code == 400


def test_a_requirement_is_checked_before_the_body(
    application: Repolink, client: TestClient, jane: Account
) -> None:
    response = client.post("/api/admin/body", headers=bearer(jane.token), content=b"{not json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "site_admin_required"
    root = make_account(application, "root", site_admin=True)
    response = client.post("/api/admin/body", headers=bearer(root.token), json={"count": 1})
    assert response.json() == {"count": 1}


def test_a_route_without_the_class_refuses_the_principal(application: Repolink) -> None:
    app = create_app(title="t", description="t", prefix="/api", max_body_bytes=1024)
    router = APIRouter()

    @router.get("/api/who")
    def who(principal: Annotated[Principal, Depends(current_principal)]) -> str:
        return principal.username

    app.include_router(router)
    with TestClient(app) as test_client:
        assert test_client.get("/api/who").status_code == 401
