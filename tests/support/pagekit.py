"""The pages of ``repolink serve``, read off the service app's routes, and what to show them
with — so that a page is covered by the page-wide browser tests (``tests/browser/
test_pages_a11y.py``, ``test_pages_access.py``) the moment its route is registered.

- :data:`PAGES` — every GET route of the web package (``repolink.web``) and the API docs
  pages, but :data:`NOT_PAGES` (an event stream, which never ends: add yours, with why).
  Some answer JSON or a download, not a page: the a11y test skips those, the access sweep
  checks them all.
- :func:`make_tour` — what the pages are shown with, made through the API and git on a running
  server: a project connected to a hosted repository of the same slug, with commits, and the
  repository's access key (the project's deploy key); the host keys it trusted to fetch are
  untrusted again after.
- :func:`values` — a value for each path parameter a page may have, by its name, from the
  tour; a page with a parameter not named there fails ``test_every_page_parameter_has_a_value``
  until it is added.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from repolink.app import Repolink
from repolink.http.service_app import create_service_app
from repolink.keys.generate import generate_key
from repolink.settings import Settings
from repolink.web import paths
from support import flowkit
from support.browserkit import WebServer

# Pages outside the web package: the API's own documentation.
DOCS_PAGES = ("/api/docs", "/host/api/2.0/docs")
# GET routes of the web package not to visit at all (an event stream, which never ends; the
# static files), by path, each with why. A route answering JSON or a download needs no entry:
# the sweeps find out what it answers.
NOT_PAGES: dict[str, str] = {
    f"{paths.STATIC}/{{name}}": "the pages' own style sheet and script",
    f"{paths.PREFIX}/projects/{{slug}}/commits/version.json": "the commit index's version, "
    "which Manage commits' script polls",
}
# Pages a person sees before signing in (the others are visited as the site admin).
SIGNED_OUT_PAGES = frozenset({paths.SIGNIN})
# The pages' catch-all: any other address under the prefix answers the not-found page.
CATCH_ALL = f"{paths.PREFIX}/{{rest:path}}"
# Pages whose answer is not 200 by design.
STATUSES = {CATCH_ALL: 404}
WEB_PACKAGE = "repolink.web"
PROJECT_NAME = "A11y tour"
WORKSPACE, SLUG = "a11y", "a11y-tour"
TOUR_MEMBER = "a11y-member"
_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]*)?}")


@dataclass(frozen=True)
class PageRoute:
    path: str
    parameters: tuple[str, ...]

    @property
    def name(self) -> str:
        """The screenshot's name: the path's words, parameters kept as their names."""
        words = re.sub(r"[^a-z0-9]+", "-", self.path.lower()).strip("-")
        return f"page-{words or 'root'}"

    def address(self, known: dict[str, str]) -> str:
        """The path with each parameter replaced by its value in ``known``."""
        return _PARAMETER.sub(lambda match: known[match.group(1)], self.path)


def get_routes(app: FastAPI) -> Iterator[tuple[str, Any]]:
    """(path, endpoint) of every GET route of ``app``, those of included routers too."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept as such
        routes: Iterable[Any] = app.routes
    else:
        routes = iter_route_contexts(app.routes)
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None) or ()
        if path and "GET" in methods:
            yield path, getattr(route, "endpoint", None)


def page_routes() -> list[PageRoute]:
    """Every GET route of the service app that answers a page, in the app's order."""
    with tempfile.TemporaryDirectory() as data_dir, Repolink(Settings(data_dir=data_dir)) as app:
        service_app = create_service_app(app, ssh_url_base="ssh://git@127.0.0.1:2222")
        routes = list(get_routes(service_app))
    found: dict[str, PageRoute] = {}
    for path, endpoint in routes:
        module = getattr(endpoint, "__module__", "") or ""
        if path in NOT_PAGES:
            continue
        if path in DOCS_PAGES or module.split(".")[:2] == WEB_PACKAGE.split("."):
            found.setdefault(path, PageRoute(path, tuple(_PARAMETER.findall(path))))
    return list(found.values())


PAGES = page_routes()


@dataclass(frozen=True)
class Tour:
    """What the pages are shown with (:func:`make_tour`): a value for each parameter."""

    values: dict[str, str]


def make_tour(web_server: WebServer, root: Path) -> Tour:
    """Project :data:`PROJECT_NAME` connected to :data:`WORKSPACE`/:data:`SLUG` on the
    server's host, fetched; the repository's person, keys and working copy under ``root``."""
    with flowkit.api_client(web_server.service, web_server.admin_token) as api:
        _, commits = flowkit.hosted_repository(
            api, web_server.service, root, workspace=WORKSPACE, slug=SLUG
        )
        trusted_before = trusted_ids(api)
        flowkit.connect_project(
            api,
            web_server.service,
            web_server.service.ssh_port or 0,
            name=PROJECT_NAME,
            workspace=WORKSPACE,
            slug=SLUG,
        )
        fetched = flowkit.ok(api.post(f"/api/v1/projects/{SLUG}/fetch", params={"wait": "true"}))
        assert fetched["errors"] == [], fetched
        # The project's deploy key is the hosted repository's access key.
        deploy_keys = api.get(f"{flowkit.HOST_API}/repositories/{WORKSPACE}/{SLUG}/deploy-keys")
        [access_key] = flowkit.ok(deploy_keys)["values"]
        # The SSH keys page's confirmation pages ask about an additional key and a key rule.
        additional = api.post(
            f"/api/v1/projects/{SLUG}/additional-keys",
            json={"hostname": "git.example.com", "generate": {"type": "ed25519"}},
        )
        rule = api.post(
            f"/api/v1/projects/{SLUG}/key-rules",
            json={"prefix": "ssh://git@git.example.com/team/", "key": "deploy"},
        )
        # Trust is site-wide and the server is shared: the tests of the trust step (the
        # Repository page's "Trust this fingerprint") must find the server's own host untrusted.
        for key_id in trusted_ids(api) - trusted_before:
            flowkit.ok(api.delete(f"/api/v1/known-hosts/{key_id}"), 204)
        # Known hosts' confirmation page asks about a host key trusted on this server: the
        # server's own, under the name localhost (the trust step's tests look at 127.0.0.1).
        fingerprint = sorted(flowkit.printed_host_keys(web_server.service))[0]
        trusted = api.post(
            "/api/v1/known-hosts",
            json={
                "host": "localhost",
                "port": web_server.service.ssh_port or 0,
                "fingerprint": fingerprint,
            },
        )
        known_host_id = str(flowkit.ok(trusted, 200, 201)["key"]["id"])
        # Checkout keys' confirmation page asks about the deploy key (by its MD5 colon-hex).
        [checkout_key] = flowkit.ok(api.get(f"/api/v2/project/{SLUG}/checkout-key"))["items"]
        # Members' removal confirmation asks about a member of the project.
        web_server.create_user(TOUR_MEMBER, "a11y tour member passphrase")
        member = api.put(f"/api/v1/projects/{SLUG}/members/{TOUR_MEMBER}", json={"role": "viewer"})
        flowkit.ok(member)
        # The host's delete confirmations ask about an account key and a webhook.
        account_key = api.post(
            f"{flowkit.HOST_API}/workspaces/{WORKSPACE}/ssh-keys",
            json={"key": generate_key().public_key.openssh_line(), "label": "a11y tour"},
        )
        hook = api.post(
            f"{flowkit.HOST_API}/repositories/{WORKSPACE}/{SLUG}/hooks",
            # Never delivered to: the tour pushes nothing after it is added.
            json={"url": "https://ci.example.com/a11y-tour", "description": "a11y tour"},
        )
    found = values(
        commits,
        known_host_id=known_host_id,
        access_key_id=str(access_key["id"]),
        additional_key_id=flowkit.ok(additional, 201)["id"],
        key_rule_id=flowkit.ok(rule, 201)["id"],
        fingerprint=checkout_key["fingerprint"],
        account_key_id=str(flowkit.ok(account_key, 201)["id"]),
        hook_uuid=flowkit.ok(hook, 201)["uuid"].strip("{}"),
    )
    return Tour(values=found)


def trusted_ids(api: Any) -> set[int]:
    """The ids of the host keys trusted on the server (not those shipped with repolink)."""
    return {key["id"] for key in flowkit.ok(api.get("/api/v1/known-hosts")) if key["id"]}


def values(
    commits: list[str],
    *,
    access_key_id: str = "1",
    additional_key_id: str = "x",
    key_rule_id: str = "x",
    known_host_id: str = "x",
    fingerprint: str = "x",
    account_key_id: str = "x",
    hook_uuid: str = "x",
) -> dict[str, str]:
    """A value for each path parameter a page may have, by its name. A project's slug and its
    hosted repository's slug are the same, so ``slug`` suits both kinds of page."""
    return {
        "slug": SLUG,
        "project": SLUG,
        "project_slug": SLUG,
        "workspace": WORKSPACE,
        "repo_slug": SLUG,
        "repository": SLUG,
        "sha": commits[-1],
        "commit": commits[-1],
        "username": TOUR_MEMBER,
        "user": "admin",
        "access_key_id": access_key_id,
        "additional_key_id": additional_key_id,
        "key_rule_id": key_rule_id,
        "known_host_id": known_host_id,
        "fingerprint": fingerprint,
        "account_key_id": account_key_id,
        "hook_uuid": hook_uuid,
        # The pages' catch-all: an address with no page answers the not-found page.
        "rest": "no-such-page",
    }
