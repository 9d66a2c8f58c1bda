"""The members page (in process): everyone in the project sees the members; only its admins
get the forms — add by username with a role, change a role, remove — and every refusal,
``last_admin`` included, is shown beside the control that caused it."""

from __future__ import annotations

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from support.accountskit import make_account
from support.webkit import signed_in_pages

MEMBERS = "/ui/projects/acme/members"


@pytest.fixture(autouse=True)
def _people(app: Repolink) -> None:
    owner = make_account(app, "owner")
    make_account(app, "dev")
    make_account(app, "newcomer")
    app.access.create_project(owner.principal, "Acme", slug="acme")
    app.access.set_member(owner.principal, "acme", "dev", Role.MEMBER)


def roles(app: Repolink) -> dict[str, str]:
    return {m.username: m.role.value for m in app.access.members(LOCAL_ADMIN, "acme")}


def test_an_admin_adds_changes_and_removes_members(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(
            MEMBERS, {"username": "newcomer", "role": "viewer"}, token_from=MEMBERS
        )
        assert (response.status_code, response.headers["location"]) == (303, MEMBERS)
        assert "newcomer is viewer." in pages.get(MEMBERS).text
        assert roles(app)["newcomer"] == "viewer"
        pages.post(f"{MEMBERS}/newcomer/role", {"role": "admin"}, token_from=MEMBERS)
        assert roles(app)["newcomer"] == "admin"
        # Remove: the link opens a page that asks, whose button removes.
        question = f"{MEMBERS}/dev/remove"
        assert f'href="{question}"' in pages.get(MEMBERS).text
        asked = pages.get(question)
        assert asked.status_code == 200 and "Remove dev from this project?" in asked.text
        assert "dev" in roles(app)  # asking removes no one
        pages.post(question, token_from=question)
        assert roles(app) == {"owner": "admin", "newcomer": "admin"}
        assert pages.get(f"{MEMBERS}/nobody/remove").status_code == 404


def test_the_last_admin_is_kept_and_the_refusal_shown_beside_its_row(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(f"{MEMBERS}/owner/role", {"role": "viewer"}, token_from=MEMBERS)
        assert response.status_code == 409
        row = response.text.split('<th scope="row">owner</th>', 1)[1].split("</tr>", 1)[0]
        assert 'id="role-error"' in row and "last_admin" in row and "Fix:" in row
        response = pages.post(f"{MEMBERS}/owner/remove", token_from=MEMBERS)
        assert response.status_code == 409 and "last_admin" in response.text
    assert roles(app)["owner"] == "admin"


@pytest.mark.parametrize(
    ("form", "field", "code"),
    [
        ({"username": "nobody", "role": "member"}, "username", "user_not_found"),
        ({"username": "newcomer", "role": "owner"}, "role", "role_invalid"),
    ],
)
def test_a_refused_addition_is_shown_beside_its_field(
    app: Repolink, form: dict[str, str], field: str, code: str
) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(MEMBERS, form, token_from=MEMBERS)
        assert response.status_code in (400, 404)
        error = response.text.split(f'id="{field}-error"', 1)[1].split("</div>", 1)[0]
        assert code in error
    assert "newcomer" not in roles(app)


def test_a_member_sees_the_list_without_the_forms_and_may_not_post(app: Repolink) -> None:
    with signed_in_pages(app, "dev") as pages:
        page = pages.get(MEMBERS)
        assert page.status_code == 200
        assert ">owner</th>" in page.text and "Add a member" not in page.text
        assert f'href="{MEMBERS}/owner/remove"' not in page.text
        assert pages.get(f"{MEMBERS}/owner/remove").status_code == 403
        token_page = "/ui/projects/acme"
        response = pages.post(
            MEMBERS, {"username": "newcomer", "role": "admin"}, token_from=token_page
        )
        assert response.status_code == 403 and "role_required" in response.text
        response = pages.post(f"{MEMBERS}/owner/remove", token_from=token_page)
        assert response.status_code == 403
    assert roles(app) == {"owner": "admin", "dev": "member"}


def test_a_stranger_cannot_touch_the_members(app: Repolink) -> None:
    with signed_in_pages(app, "newcomer") as pages:
        assert pages.get(MEMBERS).status_code == 404
        response = pages.post(
            MEMBERS, {"username": "newcomer", "role": "admin"}, token_from="/ui/projects"
        )
        assert response.status_code == 404 and "project_not_found" in response.text
    assert "newcomer" not in roles(app)
