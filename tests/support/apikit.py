"""The platform API in process, with one caller of every kind.

``PlatformAPI`` wraps the service app (:func:`repolink.http.service_app.create_service_app`)
over a platform's application in FastAPI's ``TestClient`` (the app's real routing, auth and
error mapping, no network), and holds a token for each kind of caller a project can have:

- ``root`` — a site admin (no membership needed);
- ``owner`` — the project's admin (it created the projects it makes with :meth:`create`);
- ``dev`` — a member; ``watcher`` — a viewer; ``stranger`` — a user who is no member;
- ``anonymous`` — no token at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.http.service_app import create_service_app

ROOT, OWNER, DEV, WATCHER, STRANGER, ANONYMOUS = (
    "root",
    "owner",
    "dev",
    "watcher",
    "stranger",
    "anonymous",
)
CALLERS = (ROOT, OWNER, DEV, WATCHER, STRANGER, ANONYMOUS)
# The role each caller gets in the projects :meth:`PlatformAPI.create` makes.
ROLES = {OWNER: Role.ADMIN, DEV: Role.MEMBER, WATCHER: Role.VIEWER}


def may(caller: str, required: Role | None) -> bool:
    """Whether ``caller`` may do what needs ``required`` in a project of :meth:`create`
    (``None``: any signed-in caller)."""
    if caller == ANONYMOUS:
        return False
    if caller == ROOT or required is None:
        return True
    role = ROLES.get(caller)
    return role is not None and role.allows(required)


def denial(caller: str, required: Role | None) -> tuple[int, str]:
    """The status and code ``caller`` gets for what needs ``required``, when it may not."""
    if caller == ANONYMOUS:
        return 401, "unauthorized"
    if caller not in ROLES:
        return 404, "project_not_found"
    return 403, "role_required"


@dataclass
class PlatformAPI:
    app: Repolink
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, caller: str) -> dict[str, str]:
        token = self.tokens.get(caller)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, caller: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``method path`` under ``/api/v1`` as ``caller``."""
        headers = {**self.headers(caller), **kwargs.pop("headers", {})}
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def ok(self, caller: str, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON of a 2xx answer (``None`` for 204); anything else fails the test."""
        response = self.call(caller, method, path, **kwargs)
        assert response.is_success, (response.status_code, response.text)
        return response.json() if response.status_code != 204 else None

    def create(self, slug: str, name: str | None = None) -> dict[str, Any]:
        """A project made by ``owner`` through the API, with ``dev`` and ``watcher`` in it."""
        project: dict[str, Any] = self.ok(
            OWNER, "POST", "/projects", json={"name": name or slug.title(), "slug": slug}
        )
        for caller, role in ROLES.items():
            if role is not Role.ADMIN:
                self.app.access.set_member(LOCAL_ADMIN, slug, caller, role)
        return project


def platform_api(app: Repolink, *, ssh_url_base: str | None = None) -> Iterator[PlatformAPI]:
    """The API over ``app``, its users and their tokens made (a generator, for fixtures)."""
    app.users.create(LOCAL_ADMIN, ROOT, site_admin=True)
    for name in (OWNER, DEV, WATCHER, STRANGER):
        app.users.create(LOCAL_ADMIN, name)
    tokens = {
        name: app.api_tokens.create(LOCAL_ADMIN, name, "tests")[1]
        for name in (ROOT, OWNER, DEV, WATCHER, STRANGER)
    }
    service = create_service_app(app, ssh_url_base=ssh_url_base)
    # raise_server_exceptions off: an unexpected error answers 500 as it would in the server.
    with TestClient(service, raise_server_exceptions=False) as client:
        yield PlatformAPI(app, client, tokens)
