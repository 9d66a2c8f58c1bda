"""Checkout keys (CircleCI's deploy and user keys): listing, the preferred key, creating and
deleting them (a deploy key through a key rotation), resolving ``gh/org/repo`` project slugs,
and fetches over real ssh and git using the preferred key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.errors import RepolinkError
from repolink.keys import generate_key
from repolink.platform.checkout_keys import DEPLOY_KEY, USER_KEY, CheckoutKeyInfo
from repolink.platform.connections import create_connection, parse_connection_url
from repolink.platform.key_rules import SOURCE_DEPLOY_KEY, SOURCE_USER_KEY
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.base import Base
from repolink.store.models import KeyRecord
from repolink.store.models.platform import KEY_GENERATED
from repolink.store.models.user_keys import UserKey
from repolink.urls import parse_ssh_url
from repolink.vault import Vault
from support.platformkit import WORKSPACE, HostedRepos, Platform, close_shared_connection

pytestmark = pytest.mark.databases

# The ids of the users make_users makes, the first two of a fresh database.
ALICE, BOB = 1, 2


def make_users(application: Repolink) -> None:
    # No password: a token's user, and no argon2 to pay for.
    assert application.users.create(LOCAL_ADMIN, "alice").id == ALICE
    assert application.users.create(LOCAL_ADMIN, "bob").id == BOB


@pytest.fixture
def app(settings: Settings, store: Store, vault: Vault) -> Repolink:
    """An application with the users ``alice`` and ``bob``."""
    application = Repolink(settings, store=store, vault=vault)
    make_users(application)
    return application


def connected(app: Repolink, slug: str, url: str = "git@git.example.com:team/app.git") -> str:
    """Project ``slug`` connected (no fetch) to ``url``; its deploy key's SHA256 fingerprint."""
    app.projects.create_project(slug.title(), slug=slug)
    with app.store.session() as session:
        info = create_connection(
            session,
            app.vault(),
            slug,
            parse_connection_url(url),
            generate_key(),
            origin=KEY_GENERATED,
        )
    return info.deploy_key.fingerprint_sha256


def kinds(keys: list[CheckoutKeyInfo]) -> list[tuple[str, bool, bool]]:
    return [(key.kind, key.preferred, key.pending) for key in keys]


def code_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(RepolinkError) as caught:
        call(*args, **kwargs)
    return caught.value.code


# -- the table ----------------------------------------------------------------------------------


def test_migration_matches_the_model(store: Store) -> None:
    def mine(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) == UserKey.__tablename__

    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": mine}
        )
        assert compare_metadata(context, Base.metadata) == []


# -- listing and the preferred key --------------------------------------------------------------


def test_the_deploy_key_is_preferred_until_a_user_key_exists(app: Repolink) -> None:
    deploy = connected(app, "proj")
    [only] = app.checkout_keys.list_keys("proj")
    assert (only.kind, only.preferred, only.fingerprint_sha256) == (DEPLOY_KEY, True, deploy)
    assert only.md5_hex == only.fingerprint_md5.removeprefix("MD5:") and ":" in only.md5_hex

    alice = app.checkout_keys.create_user_key("proj", ALICE)
    assert (alice.kind, alice.preferred, alice.owner_user_id) == (USER_KEY, True, ALICE)
    assert kinds(app.checkout_keys.list_keys("proj")) == [
        (USER_KEY, True, False),
        (DEPLOY_KEY, False, False),
    ]
    # The newest user key is the preferred one, whoever made it.
    bob = app.checkout_keys.create_user_key("proj", BOB)
    listed = app.checkout_keys.list_keys("proj")
    assert [key.fingerprint_sha256 for key in listed if key.preferred] == [bob.fingerprint_sha256]
    assert {key.owner_user_id for key in listed} == {ALICE, BOB, None}


def test_a_project_without_connection_has_only_user_keys(app: Repolink) -> None:
    app.projects.create_project("Loose", slug="loose")
    assert app.checkout_keys.list_keys("loose") == []
    key = app.checkout_keys.create_user_key("loose", ALICE)
    assert kinds(app.checkout_keys.list_keys("loose")) == [(USER_KEY, True, False)]
    assert key.public_key.startswith("ssh-ed25519 ")
    assert code_of(app.checkout_keys.create_deploy_key, "loose") == "connection_not_found"


def test_one_user_key_per_user_and_project(app: Repolink) -> None:
    connected(app, "proj")
    app.checkout_keys.create_user_key("proj", ALICE)
    assert code_of(app.checkout_keys.create_user_key, "proj", ALICE) == "user_key_exists"
    with app.store.session() as session:
        assert session.scalar(select(func.count()).select_from(UserKey)) == 1


def test_keys_are_found_by_any_spelling_of_their_fingerprint(app: Repolink) -> None:
    connected(app, "proj")
    key = app.checkout_keys.create_user_key("proj", ALICE)
    md5 = key.fingerprint_md5.removeprefix("MD5:")
    sha = key.fingerprint_sha256
    for spelling in (md5, md5.upper(), "MD5:" + md5, sha, sha.replace("+", " ")):
        assert app.checkout_keys.get_key("proj", spelling) == key
    other = generate_key().public_key.sha256_fingerprint
    assert code_of(app.checkout_keys.get_key, "proj", other) == "checkout_key_not_found"
    assert code_of(app.checkout_keys.get_key, "proj", "nonsense") == "fingerprint_invalid"


def test_no_answer_holds_a_private_key(app: Repolink) -> None:
    connected(app, "proj")
    key = app.checkout_keys.create_user_key("proj", ALICE)
    text = repr(key) + repr(key.as_dict()) + repr(app.checkout_keys.list_keys("proj"))
    assert "PRIVATE" not in text and "private_key" not in text
    # The key pair is stored whole (the fetch needs it), its private half encrypted.
    with app.store.session() as session:
        record = session.get(KeyRecord, key.key_record_id)
        assert record is not None and record.has_private_key


# -- deleting -----------------------------------------------------------------------------------


def test_a_member_deletes_their_own_user_key_only(app: Repolink) -> None:
    connected(app, "proj")
    alice = app.checkout_keys.create_user_key("proj", ALICE)
    bob = app.checkout_keys.create_user_key("proj", BOB)
    refused = code_of(
        app.checkout_keys.delete_key,
        "proj",
        alice.fingerprint_sha256,
        actor_user_id=BOB,
        project_admin=False,
    )
    assert refused == "role_required"
    gone = app.checkout_keys.delete_key(
        "proj", bob.fingerprint_md5, actor_user_id=BOB, project_admin=False
    )
    assert gone == bob
    # A project admin deletes anybody's; the key record goes with it.
    app.checkout_keys.delete_key(
        "proj", alice.fingerprint_sha256, actor_user_id=None, project_admin=True
    )
    assert kinds(app.checkout_keys.list_keys("proj")) == [(DEPLOY_KEY, True, False)]
    with app.store.session() as session:
        ids = {alice.key_record_id, bob.key_record_id}
        assert session.scalars(select(KeyRecord).where(KeyRecord.id.in_(ids))).all() == []


def test_deploy_keys_are_created_as_a_pending_rotation(app: Repolink) -> None:
    deploy = connected(app, "proj")
    new = app.checkout_keys.create_deploy_key("proj")
    assert (new.kind, new.preferred, new.pending) == (DEPLOY_KEY, False, True)
    assert app.deploy_keys.pending_rotation("proj") is not None
    assert kinds(app.checkout_keys.list_keys("proj")) == [
        (DEPLOY_KEY, True, False),
        (DEPLOY_KEY, False, True),
    ]
    assert code_of(app.checkout_keys.create_deploy_key, "proj") == "rotation_pending"
    # Only an admin deletes a deploy key; deleting the pending one aborts the rotation.
    assert (
        code_of(
            app.checkout_keys.delete_key,
            "proj",
            new.fingerprint_sha256,
            actor_user_id=ALICE,
            project_admin=False,
        )
        == "role_required"
    )
    app.checkout_keys.delete_key(
        "proj", new.fingerprint_sha256, actor_user_id=None, project_admin=True
    )
    assert app.deploy_keys.pending_rotation("proj") is None
    # The deploy key itself stays while nothing is pending to take its place.
    refused = code_of(
        app.checkout_keys.delete_key, "proj", deploy, actor_user_id=None, project_admin=True
    )
    assert refused == "deploy_key_required"
    assert [key.fingerprint_sha256 for key in app.checkout_keys.list_keys("proj")] == [deploy]


def test_a_user_who_leaves_takes_their_user_keys(app: Repolink) -> None:
    connected(app, "proj")
    connected(app, "other")
    app.access.set_member(LOCAL_ADMIN, "proj", "alice", Role.ADMIN)
    app.access.set_member(LOCAL_ADMIN, "proj", "bob", Role.MEMBER)
    kept = app.checkout_keys.create_user_key("proj", ALICE)
    bobs = [app.checkout_keys.create_user_key(slug, BOB) for slug in ("proj", "other")]
    # Made a viewer, who could not make one: the key goes.
    app.access.set_member(LOCAL_ADMIN, "other", "alice", Role.MEMBER)
    demoted = app.checkout_keys.create_user_key("other", ALICE)
    app.access.set_member(LOCAL_ADMIN, "other", "alice", Role.VIEWER)
    assert demoted.fingerprint_sha256 not in {
        key.fingerprint_sha256 for key in app.checkout_keys.list_keys("other")
    }
    # Removed from one project: that project's key goes, the other's stays.
    app.access.remove_member(LOCAL_ADMIN, "proj", "bob")
    assert [key.owner_user_id for key in app.checkout_keys.list_keys("proj")] == [ALICE, None]
    assert app.checkout_keys.list_keys("other")[0].owner_user_id == BOB
    # Deleted: every key of theirs goes, and the deploy key is preferred again.
    app.users.delete(LOCAL_ADMIN, "bob")
    assert [key.kind for key in app.checkout_keys.list_keys("other")] == [DEPLOY_KEY]
    assert app.checkout_keys.list_keys("other")[0].preferred
    with app.store.session() as session:
        ids = [key.key_record_id for key in bobs]
        assert session.scalars(select(KeyRecord).where(KeyRecord.id.in_(ids))).all() == []
        assert session.get(KeyRecord, kept.key_record_id) is not None


def test_deleting_a_project_deletes_its_user_keys(app: Repolink) -> None:
    connected(app, "proj")
    key = app.checkout_keys.create_user_key("proj", ALICE)
    app.projects.delete_project("proj")
    with app.store.session() as session:
        assert session.get(KeyRecord, key.key_record_id) is None
        assert session.scalar(select(func.count()).select_from(UserKey)) == 0


def test_the_inventory_lists_user_keys_with_their_project(app: Repolink) -> None:
    connected(app, "proj")
    key = app.checkout_keys.create_user_key("proj", ALICE)
    [status] = [k for k in app.keys.list_keys() if k.id == key.key_record_id]
    assert (status.project, status.use, status.state) == ("proj", "user key", "active")


def test_key_choice_falls_back_to_the_preferred_checkout_key(app: Repolink) -> None:
    deploy = connected(app, "proj")
    url = parse_ssh_url("git@git.example.com:team/lib.git")
    assert app.key_rules.choose_key("proj", url).source == SOURCE_DEPLOY_KEY
    key = app.checkout_keys.create_user_key("proj", ALICE)
    chosen = app.key_rules.choose_key("proj", url)
    assert (chosen.source, chosen.fingerprint_sha256) == (SOURCE_USER_KEY, key.fingerprint_sha256)
    assert "user key" in chosen.describe()
    # A rule naming the deploy key still means the deploy key.
    app.key_rules.add_rule("proj", "git@git.example.com:team/", "deploy")
    assert app.key_rules.choose_key("proj", url).fingerprint_sha256 == deploy


# -- CircleCI project slugs ---------------------------------------------------------------------


def test_project_slugs_name_the_project_by_its_repository_path(app: Repolink) -> None:
    connected(app, "app-one", "git@github.com:Team/App.git")
    connected(app, "other", "ssh://git@git.example.com:2222/team/other")
    resolve = app.checkout_keys.resolve_project
    for slug in ("gh/Team/App", "github/team/app", "gh/team/app.git", "/gh/team/app/"):
        assert resolve(slug) == "app-one"
    assert resolve("bb/team/other") == resolve("gitlab/TEAM/other.git") == "other"
    # Our own slug alone works, whether or not that project exists (the caller checks).
    assert resolve("app-one") == "app-one"
    assert code_of(resolve, "gh/team/none") == "project_not_found"
    for invalid in ("svn/team/app", "gh/team", "team/app", "gh//app"):
        assert code_of(resolve, invalid) == "project_slug_invalid"


def test_an_ambiguous_project_slug_is_refused_unless_visibility_decides(app: Repolink) -> None:
    connected(app, "first", "git@github.com:team/app.git")
    connected(app, "second", "git@gitlab.com:team/app.git")
    with pytest.raises(RepolinkError) as caught:
        app.checkout_keys.resolve_project("gh/team/app")
    assert caught.value.code == "project_slug_ambiguous"
    assert "first" in caught.value.message and "second" in caught.value.message
    assert app.checkout_keys.resolve_project("gh/team/app", visible=lambda s: s == "second") == (
        "second"
    )
    invisible = code_of(app.checkout_keys.resolve_project, "gh/team/app", visible=lambda s: False)
    assert invisible == "project_not_found"


# -- fetches use the preferred key, over real ssh and git ---------------------------------------


def _access_key_id(hosted: HostedRepos, repo: str, fingerprint: str) -> int:
    keys = hosted.host.service.list_access_keys(WORKSPACE, repo)
    return next(key.id for key in keys if key.fingerprint_sha256 == fingerprint)


def test_fetches_use_the_user_key_over_the_deploy_key(
    platform: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    make_users(platform.app)
    # The deploy key is never registered on the repository: only the user key can succeed.
    outcome = platform.connect("proj", hosted.other.url())
    assert outcome.error is not None and outcome.error.code == "auth_failed"
    user_key = platform.app.checkout_keys.create_user_key("proj", ALICE)
    hosted.host.service.add_access_key(WORKSPACE, "other", user_key.public_key, label="alice")
    try:
        result = platform.fetch("proj")
        assert result.new_commits == len(hosted.other.host_commits())
        used = platform.app.checkout_keys.get_key("proj", user_key.fingerprint_sha256)
        assert used.last_used_at is not None
        assert platform.app.connections.connection_info("proj").state == "ok"
    finally:
        access = _access_key_id(hosted, "other", user_key.fingerprint_sha256)
        hosted.host.service.remove_access_key(WORKSPACE, "other", access)
    # The shared SSH connection authenticated the key while it was granted (the host then
    # refuses each command on it as repo_not_found); a new connection is refused the key itself.
    close_shared_connection(platform, "proj", user_key.fingerprint_sha256, tmp_path / "ssh")
    with pytest.raises(RepolinkError) as caught:
        platform.fetch("proj")
    assert caught.value.code == "auth_failed"
    # Without the user key the deploy key is used again (and is still not registered).
    platform.app.checkout_keys.delete_key(
        "proj", user_key.fingerprint_sha256, actor_user_id=ALICE, project_admin=False
    )
    with pytest.raises(RepolinkError) as again:
        platform.fetch("proj")
    assert again.value.code == "auth_failed"


def test_deleting_the_deploy_key_completes_a_pending_rotation(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.connect("proj", hosted.app.url(), grant_on="app")
    old = platform.app.connections.connection_info("proj").deploy_key.fingerprint_sha256
    new = platform.app.checkout_keys.create_deploy_key("proj")
    delete = platform.app.checkout_keys.delete_key
    # Not on the repository yet: the proving fetch fails and nothing changes.
    refused = code_of(delete, "proj", old, actor_user_id=None, project_admin=True)
    assert refused == "auth_failed"
    assert platform.app.checkout_keys.get_key("proj", new.fingerprint_sha256).pending
    hosted.host.service.add_access_key(WORKSPACE, "app", new.public_key, label="new deploy")
    try:
        deleted = delete("proj", old, actor_user_id=None, project_admin=True)
        assert deleted.fingerprint_sha256 == old
        [current] = platform.app.checkout_keys.list_keys("proj")
        assert (current.fingerprint_sha256, current.preferred, current.pending) == (
            new.fingerprint_sha256,
            True,
            False,
        )
    finally:
        for fingerprint in (old, new.fingerprint_sha256):
            access = _access_key_id(hosted, "app", fingerprint)
            hosted.host.service.remove_access_key(WORKSPACE, "app", access)
