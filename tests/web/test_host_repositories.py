"""The built-in host's repository list, in process: each repository with its clone URL (when
the server runs the SSH host) and its last push, created through the form with its errors
beside their fields, and only for site admins."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from repolink.app import Repolink
from repolink.http.service_app import create_service_app
from support.accountskit import make_account
from support.webkit import PageClient, signed_in_pages

PAGE = "/ui/host/repositories"


@pytest.fixture(autouse=True)
def _people(app: Repolink) -> None:
    make_account(app, "root", site_admin=True)
    make_account(app, "someone")


def test_a_repository_created_on_the_page_is_on_the_host(app: Repolink) -> None:
    with signed_in_pages(app, "root") as pages:
        created = pages.post(
            PAGE,
            {"workspace": "acme", "slug": "website", "description": "the site"},
            token_from=PAGE,
        )
        listed = pages.get(PAGE)
    assert created.status_code == 303
    assert created.headers["location"] == f"{PAGE}/acme/website/access-keys"
    assert app.host.get_repository("acme", "website").description == "the site"
    assert "acme/website" in listed.text
    assert "the site" in listed.text
    assert "SSH host not running" in listed.text  # this app was given no SSH URL


@pytest.mark.parametrize(
    ("form", "field", "code"),
    [
        ({"workspace": "no spaces", "slug": "ok"}, "workspace", "workspace_invalid"),
        ({"workspace": "acme", "slug": "../up"}, "slug", "slug_invalid"),
        ({"workspace": "acme", "slug": "taken"}, "slug", "repository_exists"),
    ],
)
def test_a_refused_repository_is_named_beside_its_field(
    app: Repolink, form: dict[str, str], field: str, code: str
) -> None:
    app.host.create_repository("acme", "taken")
    with signed_in_pages(app, "root") as pages:
        shown = pages.post(PAGE, form, token_from=PAGE)
    assert shown.status_code in (400, 409)
    assert code in shown.text.split(f'id="{field}-error"', 1)[1].split("</div>", 1)[0]
    assert f'value="{form["slug"]}"' in shown.text or field == "slug"


def test_the_list_shows_the_clone_url_and_the_last_push(app: Repolink, tmp_path: Path) -> None:
    repo = app.host.create_repository("acme", "pushed")
    app.host.create_repository("acme", "empty")
    # A push is a ref written into the bare repository.
    work = tmp_path / "work"
    for args in (
        ["init", "-q", "-b", "main", str(work)],
        [
            "-C",
            str(work),
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@x",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ],
        ["-C", str(work), "push", "-q", str(app.host.repository_path(repo)), "main"],
    ):
        subprocess.run(["git", *args], check=True, capture_output=True)
    application = create_service_app(app, ssh_url_base="ssh://git@127.0.0.1:2222")
    with TestClient(application, base_url="http://testserver") as client:
        pages = PageClient(app, client)
        pages.sign_in("root")
        listed = pages.get(PAGE).text
    rows = {row.split("</tr>")[0] for row in listed.split("<tr>")[1:]}
    pushed = next(row for row in rows if "acme/pushed" in row)
    empty = next(row for row in rows if "acme/empty" in row)
    assert "ssh://git@127.0.0.1:2222/acme/pushed.git" in pushed
    assert "<time datetime=" in pushed
    assert "never" in empty and "<time" not in empty


def test_someone_who_is_no_site_admin_gets_the_403_page(app: Repolink) -> None:
    with signed_in_pages(app, "someone") as pages:
        shown = pages.get(PAGE)
        posted = pages.post(PAGE, {"workspace": "acme", "slug": "x"}, token_from="/ui/account")
    assert shown.status_code == 403
    assert "site_admin_required" in shown.text
    assert posted.status_code == 403
    assert app.host.list_all_repositories() == []


def test_only_site_admins_find_the_host_in_the_header(app: Repolink) -> None:
    with signed_in_pages(app, "someone") as pages:
        assert PAGE not in pages.get("/ui/projects").text
    with signed_in_pages(app, "root") as pages:
        assert f'href="{PAGE}"' in pages.get("/ui/projects").text
