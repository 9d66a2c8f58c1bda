"""Roles order viewer < member < admin; the CLI's principal is a site admin with no user."""

from __future__ import annotations

import dataclasses

import pytest

from repolink.auth.principal import LOCAL_ADMIN, Principal, Role


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.MEMBER, False),
        (Role.VIEWER, Role.ADMIN, False),
        (Role.MEMBER, Role.VIEWER, True),
        (Role.MEMBER, Role.MEMBER, True),
        (Role.MEMBER, Role.ADMIN, False),
        (Role.ADMIN, Role.VIEWER, True),
        (Role.ADMIN, Role.MEMBER, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_a_role_allows_what_the_roles_below_it_allow(
    role: Role, required: Role, allowed: bool
) -> None:
    assert role.allows(required) is allowed


def test_roles_are_their_names() -> None:
    assert [str(role) for role in Role] == ["viewer", "member", "admin"]
    assert Role("member") is Role.MEMBER


def test_the_local_admin_is_a_site_admin_with_no_user() -> None:
    assert LOCAL_ADMIN.site_admin
    assert LOCAL_ADMIN.user_id is None


def test_a_principal_cannot_be_changed() -> None:
    principal = Principal(user_id=1, username="jane", site_admin=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal.site_admin = True  # type: ignore[misc]
