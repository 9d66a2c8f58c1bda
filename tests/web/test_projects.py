"""The project pages (in process): the list shows each person their own projects, a project is
created from the form (its errors beside their fields), the overview's navigation links exactly
the project's pages each role may open."""

from __future__ import annotations

import pytest

from repolink.app import Repolink
from repolink.auth.principal import Role
from repolink.web.projects import PROJECT_PAGES
from support.accountskit import make_account, principal_of
from support.webkit import signed_in_pages


@pytest.fixture(autouse=True)
def _people(app: Repolink) -> None:
    owner = make_account(app, "owner")
    make_account(app, "viewer")
    make_account(app, "stranger")
    app.access.create_project(owner.principal, "Acme Server", slug="acme")
    app.access.set_member(owner.principal, "acme", "viewer", Role.VIEWER)


def test_the_list_shows_only_ones_own_projects(app: Repolink) -> None:
    with signed_in_pages(app, "viewer") as pages:
        page = pages.get("/ui/projects").text
        assert 'href="/ui/projects/acme"' in page and "Acme Server" in page
    with signed_in_pages(app, "stranger") as pages:
        page = pages.get("/ui/projects").text
        assert "Acme Server" not in page
        assert "member of no project yet" in page


def test_a_project_is_created_and_its_creator_is_its_admin(app: Repolink) -> None:
    with signed_in_pages(app, "stranger") as pages:
        response = pages.post(
            "/ui/projects/new", {"name": "My API Server", "slug": ""}, token_from="/ui/projects/new"
        )
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/ui/projects/my-api-server",
        )
        overview = pages.get(response.headers["location"])
        assert overview.status_code == 200
        assert "Project My API Server is created." in overview.text
        assert "Project My API Server is created." not in pages.get("/ui/projects").text
    assert app.access.role(principal_of(app, "stranger"), "my-api-server") is Role.ADMIN


@pytest.mark.parametrize(
    ("form", "field", "code"),
    [
        ({"name": "", "slug": ""}, "name", "project_name_invalid"),
        ({"name": "Other", "slug": "acme"}, "slug", "project_exists"),
        ({"name": "Other", "slug": "Not A Slug!"}, "slug", "project_slug_invalid"),
    ],
)
def test_a_refused_project_shows_the_error_beside_its_field(
    app: Repolink, form: dict[str, str], field: str, code: str
) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post("/ui/projects/new", form, token_from="/ui/projects/new")
        assert response.status_code in (400, 409)
        page = response.text
        error = page.split(f'id="{field}-error"', 1)[1].split("</div>", 1)[0]
        assert code in error and "Fix:" in error
        assert f'aria-describedby="{field}-help {field}-error"' in page
        # What was typed is kept.
        assert f'value="{form["name"]}"' in page
    assert len(app.access.visible_projects(principal_of(app, "owner"))) == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER, Role.ADMIN])
def test_the_navigation_links_exactly_the_pages_a_role_may_open(app: Repolink, role: Role) -> None:
    owner = principal_of(app, "owner")
    make_account(app, "someone")
    app.access.set_member(owner, "acme", "someone", role)
    with signed_in_pages(app, "someone") as pages:
        overview = pages.get("/ui/projects/acme").text
        for page in PROJECT_PAGES:
            link = f'<a href="{page.href("acme")}">{page.label}</a>'
            status = pages.get(page.href("acme")).status_code
            # Shown exactly when the page opens; a page it does not open refuses the role.
            assert (link in overview, status) in ((True, 200), (False, 403)), (page, status)
            if role == Role.VIEWER and page.label == "Webhooks":  # the page viewers missed
                assert link in overview
