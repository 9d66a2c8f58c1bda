"""The platform API's projects and members, in process: every route by every kind of caller,
and every error a client can cause."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.settings import Settings
from repolink.store import Store
from support.apikit import (
    CALLERS,
    DEV,
    OWNER,
    ROOT,
    STRANGER,
    WATCHER,
    PlatformAPI,
    denial,
    may,
    platform_api,
)

pytestmark = pytest.mark.databases


@pytest.fixture
def api(tmp_path: Path) -> Iterator[PlatformAPI]:
    settings = Settings(data_dir=tmp_path / "data")
    with Store.open(settings) as store, Repolink(settings, store=store) as app:
        yield from platform_api(app)


def _audit(api: PlatformAPI, project: str) -> list[tuple[str, str]]:
    """``(action, actor)`` of the audit log's entries about ``project``, newest first."""
    entries = api.app.audit.entries(LOCAL_ADMIN, limit=500).items
    return [(e.action, e.actor) for e in entries if e.project == project]


def _error(response: Any) -> dict[str, str]:
    body = response.json()
    assert body["type"] == "error"
    error: dict[str, str] = body["error"]
    return error


# Every route of the module and the role it needs (None: any signed-in caller). Each is
# harmless when refused; the allowed calls are the tests below.
ROUTES: list[tuple[str, str, dict[str, Any] | None, Role | None]] = [
    ("GET", "/projects/acme", None, Role.VIEWER),
    ("PATCH", "/projects/acme", {"name": "Renamed"}, Role.ADMIN),
    ("DELETE", "/projects/acme", None, Role.ADMIN),
    ("GET", "/projects/acme/members", None, Role.VIEWER),
    ("PUT", "/projects/acme/members/stranger", {"role": "viewer"}, Role.ADMIN),
    ("DELETE", "/projects/acme/members/dev", None, Role.ADMIN),
]


@pytest.mark.parametrize(("method", "path", "body", "required"), ROUTES)
def test_every_route_refuses_whoever_may_not(
    api: PlatformAPI, method: str, path: str, body: dict[str, Any] | None, required: Role
) -> None:
    api.create("acme", "Acme")
    for caller in CALLERS:
        if may(caller, required):
            continue
        response = api.call(caller, method, path, json=body)
        status, code = denial(caller, required)
        assert (response.status_code, _error(response)["code"]) == (status, code), caller
    # Nothing changed: the project, its name and its members are as they were.
    assert api.ok(ROOT, "GET", "/projects/acme")["name"] == "Acme"
    members = api.ok(ROOT, "GET", "/projects/acme/members")["items"]
    assert {m["username"]: m["role"] for m in members} == {
        OWNER: "admin",
        DEV: "member",
        WATCHER: "viewer",
    }


def test_an_invisible_project_answers_as_one_that_does_not_exist(api: PlatformAPI) -> None:
    api.create("secret-plans", "Secret plans")

    hidden = api.call(STRANGER, "GET", "/projects/secret-plans")
    missing = api.call(STRANGER, "GET", "/projects/no-such-project")
    # Not even the slug of the project named like the one asked for is suggested.
    by_name = api.call(STRANGER, "GET", "/projects/Secret%20plans")

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert by_name.status_code in (400, 404) and "secret-plans" not in by_name.text


def test_anonymous_is_refused_before_the_body_is_read(api: PlatformAPI) -> None:
    response = api.client.post("/api/v1/projects", content=b"{not json")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert _error(response)["code"] == "unauthorized"


def test_create_makes_the_creator_admin_and_answers_the_slug(api: PlatformAPI) -> None:
    response = api.call(DEV, "POST", "/projects", json={"name": "Image classifier"})

    assert response.status_code == 201
    project = response.json()
    assert (project["slug"], project["name"], project["connected"]) == (
        "image-classifier",
        "Image classifier",
        False,
    )
    assert response.headers["location"] == "/api/v1/projects/image-classifier"
    members = api.ok(DEV, "GET", "/projects/image-classifier/members")["items"]
    assert [(m["username"], m["role"]) for m in members] == [(DEV, "admin")]
    assert ("project.create", DEV) in _audit(api, "image-classifier")


def test_list_shows_each_caller_the_projects_it_may_see(api: PlatformAPI) -> None:
    api.create("alpha")
    api.ok(STRANGER, "POST", "/projects", json={"name": "Mine", "slug": "mine"})

    def slugs(caller: str) -> list[str]:
        return [p["slug"] for p in api.ok(caller, "GET", "/projects")["items"]]

    assert slugs(ROOT) == ["alpha", "mine"]
    assert slugs(OWNER) == slugs(DEV) == slugs(WATCHER) == ["alpha"]
    assert slugs(STRANGER) == ["mine"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "  "}, 400, "project_name_invalid"),
        ({"name": "two\nlines"}, 400, "project_name_invalid"),
        ({"name": "Ok", "slug": "Not A Slug"}, 400, "project_slug_invalid"),
        ({"name": "Ok", "slug": "list"}, 400, "project_slug_reserved"),
        ({"name": "Taken", "slug": "taken"}, 409, "project_exists"),
        ({"slug": "no-name"}, 400, "invalid_request"),
        ({"name": 12}, 400, "invalid_request"),
        ({"name": "x" * 10_000}, 400, "invalid_request"),
    ],
)
def test_create_names_what_is_wrong(
    api: PlatformAPI, body: dict[str, Any], status: int, code: str
) -> None:
    api.create("taken")

    response = api.call(OWNER, "POST", "/projects", json=body)

    assert (response.status_code, _error(response)["code"]) == (status, code)


def test_a_body_that_is_no_json_is_invalid_request(api: PlatformAPI) -> None:
    response = api.call(
        OWNER, "POST", "/projects", content=b"\xff{", headers={"content-type": "application/json"}
    )

    assert (response.status_code, _error(response)["code"]) == (400, "invalid_request")


def test_show_rename_delete(api: PlatformAPI) -> None:
    created = api.create("acme", "Acme")

    assert api.ok(WATCHER, "GET", "/projects/acme") == created
    renamed = api.ok(OWNER, "PATCH", "/projects/acme", json={"name": "Acme Corp"})
    assert (renamed["slug"], renamed["name"]) == ("acme", "Acme Corp")
    assert api.ok(OWNER, "PATCH", "/projects/acme", json={}) == renamed
    bad = api.call(OWNER, "PATCH", "/projects/acme", json={"name": ""})
    assert (bad.status_code, _error(bad)["code"]) == (400, "project_name_invalid")

    assert api.call(OWNER, "DELETE", "/projects/acme").status_code == 204
    gone = api.call(ROOT, "GET", "/projects/acme")
    assert (gone.status_code, _error(gone)["code"]) == (404, "project_not_found")
    assert {("project.rename", OWNER), ("project.delete", OWNER)} <= set(_audit(api, "acme"))


def test_a_site_admin_may_do_everything_without_being_a_member(api: PlatformAPI) -> None:
    api.create("acme")

    assert api.ok(ROOT, "PATCH", "/projects/acme", json={"name": "By root"})["name"] == "By root"
    assert api.ok(ROOT, "PUT", "/projects/acme/members/stranger", json={"role": "member"})
    assert api.call(ROOT, "DELETE", "/projects/acme").status_code == 204


def test_members_set_change_and_remove(api: PlatformAPI) -> None:
    api.create("acme")

    added = api.ok(OWNER, "PUT", "/projects/acme/members/stranger", json={"role": "viewer"})
    assert (added["username"], added["role"]) == (STRANGER, "viewer")
    assert api.ok(STRANGER, "GET", "/projects/acme")["slug"] == "acme"
    promoted = api.ok(OWNER, "PUT", "/projects/acme/members/stranger", json={"role": "member"})
    assert promoted["role"] == "member"
    assert api.call(OWNER, "DELETE", "/projects/acme/members/stranger").status_code == 204
    assert api.call(STRANGER, "GET", "/projects/acme").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("PUT", "/projects/acme/members/nobody", {"role": "viewer"}, 404, "user_not_found"),
        ("PUT", "/projects/acme/members/stranger", {"role": "owner"}, 400, "invalid_request"),
        ("PUT", "/projects/acme/members/stranger", {}, 400, "invalid_request"),
        ("DELETE", "/projects/acme/members/stranger", None, 404, "member_not_found"),
        ("DELETE", "/projects/acme/members/owner", None, 409, "last_admin"),
        ("PUT", "/projects/acme/members/owner", {"role": "viewer"}, 409, "last_admin"),
        ("GET", "/projects/" + "a" * 63, None, 400, "invalid_request"),
    ],
)
def test_member_errors_are_named(
    api: PlatformAPI,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    api.create("acme")

    response = api.call(OWNER, method, path, json=body)

    assert (response.status_code, _error(response)["code"]) == (status, code)
