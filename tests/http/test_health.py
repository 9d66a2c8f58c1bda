"""``/healthz`` and ``/readyz`` of the service app, on real SQLite databases."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from repolink.app import Repolink
from repolink.http.service_app import create_service_app
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.engine import make_engine, parse_database_url

pytestmark = pytest.mark.databases

with warnings.catch_warnings():
    # Starlette asks for another HTTP client library in its test client; httpx is ours.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def application(tmp_path: Path) -> Iterator[Repolink]:
    with Repolink(Settings(data_dir=tmp_path / "data")) as app:
        yield app


def test_alive_and_ready_on_a_migrated_database(application: Repolink) -> None:
    with TestClient(create_service_app(application)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        answer = client.get("/readyz")
        assert answer.status_code == 200
        assert answer.json() == {"status": "ready"}


def test_not_ready_when_the_schema_is_behind(application: Repolink) -> None:
    with application.store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with TestClient(create_service_app(application)) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["type"] == "error"
        assert answer.json()["error"]["code"] == "store_schema_outdated"
        # Alive all the same: a supervisor must not restart it for the database's sake.
        assert client.get("/healthz").status_code == 200


def test_not_ready_when_the_database_does_not_answer(tmp_path: Path) -> None:
    # A database file in a directory that does not exist: every connection fails.
    url = parse_database_url(f"sqlite:///{tmp_path / 'missing' / 'repolink.db'}")
    store = Store(make_engine(url), url)
    with (
        Repolink(Settings(data_dir=tmp_path / "data"), store=store) as application,
        TestClient(create_service_app(application)) as client,
    ):
        answer = client.get("/readyz")
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["code"] == "store_unavailable"
        # The driver's words stay in the log: the probe answers anyone.
        assert "missing" not in answer.text and "sqlite" not in answer.text.lower()
        assert client.get("/healthz").status_code == 200
