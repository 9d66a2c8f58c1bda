"""The audit log: entries for user, token and member changes; read by site admins (all) and
by a project's admins (theirs); never a secret in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.errors import NotFound, PermissionDenied, ValidationError
from repolink.settings import Settings
from support.accountskit import FAST_HASHER, PASSWORD, make_account

pytestmark = pytest.mark.databases


@pytest.fixture
def app(settings: Settings) -> Iterator[Repolink]:
    with Repolink(settings, password_hasher=FAST_HASHER) as application:
        yield application


def test_changes_here_are_recorded_without_secrets(app: Repolink) -> None:
    owner = make_account(app, "owner")
    slug = app.access.create_project(owner.principal, "Widgets").slug
    make_account(app, "jane")
    app.access.set_member(owner.principal, slug, "jane", Role.MEMBER)
    app.access.set_member(owner.principal, slug, "jane", Role.VIEWER)
    app.access.remove_member(owner.principal, slug, "jane")
    app.users.set_password(LOCAL_ADMIN, "jane", "another long password")
    (token,) = app.api_tokens.list(LOCAL_ADMIN, username="jane")
    app.api_tokens.revoke(LOCAL_ADMIN, token.id)
    app.users.delete(LOCAL_ADMIN, "jane")

    entries = app.audit.entries(LOCAL_ADMIN).items
    assert [(e.actor, e.action, e.project, e.target) for e in reversed(entries)] == [
        ("local-admin", "user.create", None, "owner"),
        ("local-admin", "token.create", None, "owner"),
        ("owner", "project.create", slug, None),
        ("local-admin", "user.create", None, "jane"),
        ("local-admin", "token.create", None, "jane"),
        ("owner", "member.set", slug, "jane"),
        ("owner", "member.set", slug, "jane"),
        ("owner", "member.remove", slug, "jane"),
        ("local-admin", "user.set_password", None, "jane"),
        ("local-admin", "token.revoke", None, str(token.id)),
        ("local-admin", "user.delete", None, "jane"),
    ]
    assert entries[4].details == {"role": "viewer", "previous": "member"}
    text = repr([entry.as_dict() for entry in entries])
    assert PASSWORD not in text and "another long password" not in text
    assert owner.token not in text and owner.token[4:20] not in text


def test_record_for_other_services(app: Repolink) -> None:
    slug = app.projects.create_project("Widgets").slug
    app.audit.record(
        LOCAL_ADMIN, "key.rotate", project=slug, target="deploy key", details={"fp": "SHA256:x"}
    )
    app.projects.delete_project(slug)
    app.audit.record(LOCAL_ADMIN, "project.delete", project=slug)
    rotate, delete = reversed(app.audit.entries(LOCAL_ADMIN).items)
    assert (rotate.project, rotate.details) == (slug, {"fp": "SHA256:x"})
    assert (delete.action, delete.project) == ("project.delete", slug)


def test_who_reads_what(app: Repolink) -> None:
    owner = make_account(app, "owner")
    jane = make_account(app, "jane")
    mine = app.access.create_project(owner.principal, "Mine").slug
    other = app.access.create_project(LOCAL_ADMIN, "Other").slug
    app.audit.record(LOCAL_ADMIN, "connection.set", project=other)
    app.access.set_member(owner.principal, mine, "jane", Role.MEMBER)

    page = app.audit.entries(owner.principal, project=mine)
    assert {entry.project for entry in page.items} == {mine}
    assert [entry.action for entry in page.items] == ["member.set", "project.create"]
    with pytest.raises(PermissionDenied) as whole:
        app.audit.entries(owner.principal)
    assert whole.value.code == "site_admin_required"
    with pytest.raises(PermissionDenied) as member:
        app.audit.entries(jane.principal, project=mine)
    assert member.value.code == "role_required"
    with pytest.raises(NotFound):
        app.audit.entries(owner.principal, project=other)


def test_pages_follow_the_cursor(app: Repolink) -> None:
    for number in range(5):
        app.audit.record(LOCAL_ADMIN, "test.event", target=str(number))
    first = app.audit.entries(LOCAL_ADMIN, limit=2)
    assert [e.target for e in first.items] == ["4", "3"]
    second = app.audit.entries(LOCAL_ADMIN, limit=2, cursor=first.next_cursor)
    assert [e.target for e in second.items] == ["2", "1"]
    last = app.audit.entries(LOCAL_ADMIN, limit=2, cursor=second.next_cursor)
    assert [e.target for e in last.items] == ["0"]
    assert last.next_cursor is None
    for cursor in ("x", "-1", "9" * 40):
        with pytest.raises(ValidationError):
            app.audit.entries(LOCAL_ADMIN, cursor=cursor)
    with pytest.raises(ValidationError):
        app.audit.entries(LOCAL_ADMIN, limit=0)
