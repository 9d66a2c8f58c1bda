"""AccessService: site admins see everything; a member's role decides; a non-member gets the
same project_not_found as for no project; members are managed by admins; one admin stays."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Principal, Role
from repolink.errors import Conflict, NotFound, PermissionDenied
from repolink.settings import Settings
from support.accountskit import FAST_HASHER, Account, make_account

pytestmark = pytest.mark.databases


@pytest.fixture
def app(settings: Settings) -> Iterator[Repolink]:
    with Repolink(settings, password_hasher=FAST_HASHER) as application:
        yield application


@pytest.fixture
def owner(app: Repolink) -> Account:
    return make_account(app, "owner")


@pytest.fixture
def slug(app: Repolink, owner: Account) -> str:
    return app.access.create_project(owner.principal, "Widgets").slug


def test_the_creator_is_the_projects_admin(app: Repolink, owner: Account, slug: str) -> None:
    (member,) = app.access.members(owner.principal, slug)
    assert (member.username, member.role) == ("owner", Role.ADMIN)
    assert app.access.role(owner.principal, slug) is Role.ADMIN


def test_a_project_and_its_admin_are_made_together(
    app: Repolink, owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failure after the project row (here: its audit entry) leaves no project without admin.
    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("crash")

    monkeypatch.setattr("repolink.accounts.access.write_entry", fail)
    with pytest.raises(RuntimeError):
        app.access.create_project(owner.principal, "Gadgets")
    assert app.projects.list_projects() == []


@pytest.mark.parametrize("role", list(Role))
def test_a_members_role_decides(app: Repolink, owner: Account, slug: str, role: Role) -> None:
    jane = make_account(app, "jane")
    app.access.set_member(owner.principal, slug, "jane", role)
    for required in Role:
        if role.allows(required):
            assert app.access.project(jane.principal, slug, required).slug == slug
        else:
            with pytest.raises(PermissionDenied) as caught:
                app.access.project(jane.principal, slug, required)
            assert caught.value.code == "role_required"
            assert str(required) in caught.value.message


def test_a_project_is_invisible_to_a_non_member_exactly_as_no_project(
    app: Repolink, slug: str
) -> None:
    stranger = make_account(app, "stranger")
    with pytest.raises(NotFound) as hidden:
        app.access.project(stranger.principal, slug, Role.VIEWER)
    with pytest.raises(NotFound) as missing:
        app.access.project(stranger.principal, "no-such-project", Role.VIEWER)
    # A project's name given for its slug is no clue to a non-member either.
    with pytest.raises(NotFound) as named:
        app.access.project(stranger.principal, "Widgets", Role.VIEWER)
    assert hidden.value.as_dict() == missing.value.as_dict() == named.value.as_dict()
    assert hidden.value.code == "project_not_found"
    for action in (
        lambda: app.access.members(stranger.principal, slug),
        lambda: app.access.set_member(stranger.principal, slug, "stranger", Role.ADMIN),
        lambda: app.access.remove_member(stranger.principal, slug, "owner"),
    ):
        with pytest.raises(NotFound):
            action()


def test_site_admins_see_and_do_everything(app: Repolink, slug: str) -> None:
    root = make_account(app, "root", site_admin=True)
    assert app.access.project(root.principal, slug, Role.ADMIN).slug == slug
    assert app.access.project(LOCAL_ADMIN, slug, Role.ADMIN).slug == slug
    assert [p.slug for p in app.access.visible_projects(root.principal)] == [slug]
    app.access.set_member(root.principal, slug, "root", Role.VIEWER)
    # A site admin's own membership does not lower what they may do.
    assert app.access.role(root.principal, slug) is Role.ADMIN


def test_visible_projects(app: Repolink, owner: Account, slug: str) -> None:
    other = app.access.create_project(LOCAL_ADMIN, "Other")
    jane = make_account(app, "jane")
    assert app.access.visible_projects(jane.principal) == []
    assert [p.slug for p in app.access.visible_projects(owner.principal)] == [slug]
    app.access.set_member(LOCAL_ADMIN, other.slug, "jane", Role.VIEWER)
    assert [p.slug for p in app.access.visible_projects(jane.principal)] == [other.slug]
    nobody = Principal(user_id=None, username="x", site_admin=False)
    assert app.access.visible_projects(nobody) == []


def test_only_admins_manage_members(app: Repolink, owner: Account, slug: str) -> None:
    jane = make_account(app, "jane")
    make_account(app, "joe")
    app.access.set_member(owner.principal, slug, "jane", Role.MEMBER)
    with pytest.raises(PermissionDenied) as caught:
        app.access.set_member(jane.principal, slug, "joe", Role.VIEWER)
    assert caught.value.code == "role_required"
    with pytest.raises(PermissionDenied):
        app.access.remove_member(jane.principal, slug, "owner")
    app.access.set_member(owner.principal, slug, "jane", Role.ADMIN)
    app.access.set_member(jane.principal, slug, "joe", Role.VIEWER)
    assert {m.username: m.role for m in app.access.members(owner.principal, slug)} == {
        "jane": Role.ADMIN,
        "joe": Role.VIEWER,
        "owner": Role.ADMIN,
    }
    app.access.remove_member(jane.principal, slug, "joe")
    with pytest.raises(NotFound) as missing:
        app.access.remove_member(jane.principal, slug, "joe")
    assert missing.value.code == "member_not_found"
    with pytest.raises(NotFound) as no_user:
        app.access.set_member(jane.principal, slug, "nobody", Role.VIEWER)
    assert no_user.value.code == "user_not_found"


def test_the_last_admin_stays(app: Repolink, owner: Account, slug: str) -> None:
    with pytest.raises(Conflict) as removed:
        app.access.remove_member(owner.principal, slug, "owner")
    assert removed.value.code == "last_admin"
    with pytest.raises(Conflict) as demoted:
        app.access.set_member(owner.principal, slug, "owner", Role.MEMBER)
    assert demoted.value.code == "last_admin"
    make_account(app, "jane")
    app.access.set_member(owner.principal, slug, "jane", Role.ADMIN)
    app.access.set_member(owner.principal, slug, "owner", Role.MEMBER)
    assert app.access.role(owner.principal, slug) is Role.MEMBER


def test_the_host_api_check(app: Repolink, owner: Account) -> None:
    app.access.require_site_admin(LOCAL_ADMIN)
    with pytest.raises(PermissionDenied) as caught:
        app.access.require_site_admin(owner.principal)
    assert caught.value.code == "site_admin_required"
