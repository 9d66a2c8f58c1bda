"""The pages as a whole (in process): every page route, opened by every kind of visitor, is a
page or a redirect — never a 500, never JSON — carries the security headers, and shows no
private key; unknown addresses and other people's projects are the same 404 page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from repolink.app import Repolink
from repolink.auth.principal import Role
from repolink.http.service_app import create_service_app
from support.accountskit import make_account
from support.webkit import page_client, signed_in_pages

PROJECT = "acme"


@pytest.fixture(autouse=True)
def _people(app: Repolink) -> None:
    owner = make_account(app, "owner")
    make_account(app, "viewer")
    make_account(app, "stranger")
    make_account(app, "root", site_admin=True)
    app.access.create_project(owner.principal, "Acme", slug=PROJECT)
    app.access.set_member(owner.principal, PROJECT, "viewer", Role.VIEWER)


def all_routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, also those of included routers (FastAPI includes them lazily; the
    pages' routers are included without a prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from all_routes(included.routes)
        else:
            yield route


def page_paths(app: Repolink) -> list[str]:
    """Every GET page address of the service app, its parameters filled in."""
    found = []
    for route in all_routes(create_service_app(app).routes):
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        if not route.path.startswith("/ui") or "{rest" in route.path or "/static/" in route.path:
            continue
        path = route.path.replace("{slug}", PROJECT).replace("{username}", "owner")
        path = re.sub(r"\{[^}]+\}", "x", path)
        found.append(path)
    return sorted(set(found))


def test_the_pages_are_found(app: Repolink) -> None:
    assert {"/ui/signin", "/ui/projects", "/ui/account", f"/ui/projects/{PROJECT}"} <= set(
        page_paths(app)
    )


@pytest.mark.parametrize("visitor", ["root", "owner", "viewer", "stranger", None])
def test_every_page_answers_every_visitor_without_a_key_or_a_500(
    app: Repolink, visitor: str | None
) -> None:
    saved = app.connections.save(PROJECT, "ssh://git@git.example.com/acme/app.git")
    prepared = app.connections.prepare_key(PROJECT)  # a new key, generated, not saved yet
    assert saved.private_key is not None and prepared.private_key is not None
    body_lines = [
        line
        for key in (saved.private_key, prepared.private_key)
        for line in key.to_openssh().decode().splitlines()
        if "-----" not in line
    ]
    with signed_in_pages(app, visitor) if visitor else page_client(app) as pages:
        for path in page_paths(app):
            response = pages.get(path)
            assert response.status_code in (200, 303, 403, 404), (path, response.status_code)
            # A page is HTML; a download (attachment) or a page script's JSON need not be.
            answers_html = "attachment" not in response.headers.get(
                "content-disposition", ""
            ) and not response.headers.get("content-type", "").startswith("application/json")
            if response.status_code != 303 and answers_html:
                assert response.headers["content-type"].startswith("text/html"), path
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"
            assert "PRIVATE KEY" not in response.text, path
            assert not any(line in response.text for line in body_lines), path


@pytest.mark.parametrize("visitor", ["owner", None])
def test_head_answers_every_page_as_get_would_without_the_body(
    app: Repolink, visitor: str | None
) -> None:
    app.connections.save(PROJECT, "ssh://git@git.example.com/acme/app.git")
    with signed_in_pages(app, visitor) if visitor else page_client(app) as pages:
        paths = [*page_paths(app), "/ui/no/such/page", "/ui/static/repolink.css"]
        for path in paths:
            got = pages.get(path)
            head = pages.client.head(path, follow_redirects=False)
            assert head.status_code == got.status_code, (path, head.status_code)
            assert head.content == b"", path
            for name in ("content-type", "content-length", "location", "cache-control"):
                assert head.headers.get(name) == got.headers.get(name), (path, name)


def test_a_stranger_gets_the_very_404_of_a_missing_project(app: Repolink) -> None:
    with signed_in_pages(app, "stranger") as pages:
        hidden = pages.get(f"/ui/projects/{PROJECT}")
        missing = pages.get("/ui/projects/nothing-here")
        assert hidden.status_code == missing.status_code == 404
        assert "project_not_found" in hidden.text
        assert hidden.text.replace(PROJECT, "X") == missing.text.replace("nothing-here", "X")
        assert pages.get(f"/ui/projects/{PROJECT}/members").status_code == 404


def test_an_unknown_address_is_the_404_page(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.get("/ui/no/such/page")
        assert response.status_code == 404
        assert "not_found" in response.text
        assert '<main id="main"' in response.text
    # The APIs keep answering JSON.
    with page_client(app) as pages:
        assert pages.get("/api/v1/nothing").json()["type"] == "error"


def test_the_root_of_the_pages_goes_to_the_project_list(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        for path in ("/ui", "/ui/"):
            response = pages.get(path)
            assert (response.status_code, response.headers["location"]) == (303, "/ui/projects")


def test_the_styles_and_script_are_served_from_here(app: Repolink) -> None:
    with page_client(app) as pages:
        page = pages.get("/ui/signin").text
        for name, kind in (("repolink.css", "text/css"), ("repolink.js", "text/javascript")):
            assert f'"/ui/static/{name}"' in page
            response = pages.get(f"/ui/static/{name}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(kind)
        assert pages.get("/ui/static/../app.py").status_code == 404
        assert pages.get("/ui/static/nothing.css").status_code == 404
        assert "http" not in re.sub(r'href="/|src="/', "", page.split("</head>")[0]).replace(
            'content="width', ""
        ), "no asset from elsewhere"


def test_the_layout_has_landmarks_a_skip_link_and_labelled_fields(app: Repolink) -> None:
    with page_client(app) as pages:
        page = pages.get("/ui/signin").text
    assert '<a class="skip-link" href="#main">' in page
    assert '<main id="main"' in page and "<header" in page and '<html lang="en">' in page
    for field in ("username", "password"):
        assert f'<label for="{field}">' in page and f'id="{field}"' in page


def test_the_header_names_who_is_signed_in_and_links_the_pages_they_may_open(
    app: Repolink,
) -> None:
    with signed_in_pages(app, "owner") as pages:
        page = pages.get("/ui/projects").text
        assert "owner" in page and "Sign out" in page
        # Known hosts is read by anyone signed in; the host's pages are site admins' only.
        assert ">Known hosts</a>" in page and ">Host repositories</a>" not in page
    with signed_in_pages(app, "root") as pages:
        page = pages.get("/ui/projects").text
        assert ">Known hosts</a>" in page and ">Host repositories</a>" in page


def test_a_site_admin_flag_taken_away_applies_at_once(app: Repolink) -> None:
    with signed_in_pages(app, "root") as pages:
        assert pages.get(f"/ui/projects/{PROJECT}").status_code == 200
        with app.store.session() as session:
            from repolink.store.models.accounts import User

            session.query(User).filter(User.username == "root").update({"site_admin": False})
        assert pages.get(f"/ui/projects/{PROJECT}").status_code == 404
