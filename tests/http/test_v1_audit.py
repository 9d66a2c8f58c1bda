"""The platform API's audit log, in process: the whole log for site admins, a project's for its
admins, newest first, a page at a time; entries name keys by fingerprint, never by their
material."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from repolink.auth.principal import Role
from support.apikit import CALLERS, OWNER, ROOT, PlatformAPI, denial, may, platform_api
from support.platformkit import Platform

pytestmark = pytest.mark.databases


@pytest.fixture
def api(platform: Platform) -> Iterator[PlatformAPI]:
    yield from platform_api(platform.app)


def _refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.json()["error"]["code"] == code, response.text


def test_who_reads_which_log(api: PlatformAPI) -> None:
    api.create("app")
    for caller in CALLERS:
        whole = api.call(caller, "GET", "/audit")
        if caller == ROOT:
            assert whole.status_code == 200
        elif caller == "anonymous":
            _refused(whole, 401, "unauthorized")
        else:
            _refused(whole, 403, "site_admin_required")
        mine = api.call(caller, "GET", "/projects/app/audit")
        if may(caller, Role.ADMIN):
            assert mine.status_code == 200
            assert [entry["action"] for entry in mine.json()["items"]][-1] == "project.create"
        else:
            _refused(mine, *denial(caller, Role.ADMIN))


def test_pages_newest_first_and_no_key_material(api: PlatformAPI) -> None:
    api.create("app")
    api.create("other")
    api.app.connections.save("app", "git@git.example.com:team/app.git")
    generated = api.ok(
        OWNER, "POST", "/projects/app/additional-keys", json={"generate": {}, "hostname": "h"}
    )
    started = api.ok(OWNER, "POST", "/projects/app/keys/rotate", json={"return_private_key": True})
    api.ok(OWNER, "POST", "/projects/other/additional-keys", json={"generate": {}})

    project = api.ok(OWNER, "GET", "/projects/app/audit")["items"]
    assert [entry["action"] for entry in project[:2]] == ["key.rotate", "additional_key.create"]
    assert {entry["project"] for entry in project} == {"app"}
    assert project[1]["target"] == generated["fingerprint_sha256"]
    assert project[1]["actor"] == OWNER and project[1]["at"]

    first = api.ok(ROOT, "GET", "/audit", params={"limit": 1})
    assert len(first["items"]) == 1 and first["items"][0]["project"] == "other"
    second = api.ok(ROOT, "GET", "/audit", params={"limit": 1, "cursor": first["next_cursor"]})
    assert second["items"][0]["action"] == "key.rotate"
    assert second["items"][0]["id"] < first["items"][0]["id"]
    everything = api.call(ROOT, "GET", "/audit", params={"limit": 500})
    assert everything.json()["next_cursor"] is None
    body = "".join(
        line for line in started["private_key"].splitlines() if not line.startswith("-----")
    )
    assert not any(body[i : i + 16] in everything.text for i in range(len(body) - 15))

    _refused(api.call(ROOT, "GET", "/audit", params={"cursor": "abc"}), 400, "cursor_invalid")
    _refused(api.call(ROOT, "GET", "/audit", params={"cursor": str(2**31)}), 400, "cursor_invalid")
    _refused(api.call(ROOT, "GET", "/audit", params={"limit": 0}), 400, "invalid_request")
    _refused(api.call(OWNER, "GET", "/projects/nothing/audit"), 404, "project_not_found")
