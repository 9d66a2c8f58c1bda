"""The host service: repositories, account and access keys, authorization, last use."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from repolink.errors import (
    Conflict,
    DuplicateKey,
    KeyFormatError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from repolink.git.runner import HardenedRunner
from repolink.host.service import HostService
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models.host import AccessKey
from support.hostkit import KeyPair

pytestmark = pytest.mark.databases

MakeKey = Callable[[str], KeyPair]


# -- repositories -----------------------------------------------------------------------------


def test_create_repository_makes_a_configured_bare_repository(host_service: HostService) -> None:
    info = host_service.create_repository("team", "app")
    assert (info.workspace, info.slug, info.full_name) == ("team", "app", "team/app")
    assert info.ssh_clone_path == "team/app.git"
    assert info.created_on.tzinfo is not None
    path = host_service.repository_path(info)
    assert path.name == f"{info.id}.git"  # from the id, never from the name
    assert path.parent.name == "repositories"

    def config(key: str) -> str:
        return subprocess.run(
            ["git", "config", "--file", str(path / "config"), key],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert config("core.bare") == "true"
    assert config("receive.fsckObjects") == "true"
    assert config("uploadpack.allowFilter") == "true"
    assert config("uploadpack.allowAnySHA1InWant") == "false"
    assert (path / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert not (path / "hooks").exists() or not any((path / "hooks").iterdir())


def test_repositories_are_listed_got_and_deleted(host_service: HostService) -> None:
    app = host_service.create_repository("team", "app")
    host_service.create_repository("team", "lib")
    host_service.create_repository("other", "app")
    assert [r.slug for r in host_service.list_repositories("team")] == ["app", "lib"]
    assert host_service.get_repository("team", "app") == app
    assert host_service.list_workspaces() == ["other", "team"]

    path = host_service.repository_path(app)
    host_service.delete_repository("team", "app")
    assert not path.exists()
    with pytest.raises(NotFound) as caught:
        host_service.get_repository("team", "app")
    assert caught.value.code == "repository_not_found"
    assert [r.slug for r in host_service.list_repositories("team")] == ["lib"]


def test_duplicate_repository_is_a_conflict(host_service: HostService) -> None:
    host_service.create_repository("team", "app")
    with pytest.raises(Conflict) as caught:
        host_service.create_repository("team", "app")
    assert caught.value.code == "repository_exists"


@pytest.mark.parametrize(("workspace", "slug"), [("Team", "app"), ("team", "../x"), ("-w", "a")])
def test_names_are_validated(host_service: HostService, workspace: str, slug: str) -> None:
    with pytest.raises(ValidationError):
        host_service.create_repository(workspace, slug)


def test_unknown_workspace_is_not_found(host_service: HostService) -> None:
    with pytest.raises(NotFound) as caught:
        host_service.list_repositories("nobody")
    assert caught.value.code == "workspace_not_found"
    # Issue 10 §1.4: the message names what was not found ("there is no such workspace" did not).
    assert caught.value.message == "there is no workspace nobody"
    assert caught.value.context == {"workspace": "nobody"}


# -- access keys ------------------------------------------------------------------------------


def test_access_key_is_stored_without_its_comment(
    host_service: HostService, make_key: MakeKey
) -> None:
    host_service.create_repository("team", "app")
    key = make_key("ci")
    info = host_service.add_access_key("team", "app", key.public_line, label="ci runner")
    key_type, body, comment = key.public_line.split()
    assert info.key == f"{key_type} {body}"
    assert info.comment == comment
    assert info.key_type == key_type
    assert info.fingerprint_sha256 == key.fingerprint
    assert info.fingerprint_md5.startswith("MD5:")
    assert info.read_only is True
    assert info.last_used is None
    assert info.repository_full_name == "team/app"
    assert host_service.list_access_keys("team", "app") == [info]
    assert host_service.get_access_key("team", "app", info.id) == info


def test_duplicate_access_key_has_its_own_error(
    host_service: HostService, make_key: MakeKey
) -> None:
    host_service.create_repository("team", "app")
    key = make_key("ci")
    host_service.add_access_key("team", "app", key.public_line, label="one")
    with pytest.raises(DuplicateKey) as caught:
        # The same key with another comment is still the same key.
        host_service.add_access_key("team", "app", key.public_line.rsplit(" ", 1)[0], label="two")
    assert caught.value.code == "access_key_duplicate"


def test_same_access_key_on_two_repositories(host_service: HostService, make_key: MakeKey) -> None:
    host_service.create_repository("team", "app")
    host_service.create_repository("team", "lib")
    key = make_key("ci")
    first = host_service.add_access_key("team", "app", key.public_line, label="ci")
    second = host_service.add_access_key("team", "lib", key.public_line, label="ci")
    assert first.id != second.id
    assert host_service.authorize(key.fingerprint, "team/app", "read").key_id == first.id
    assert host_service.authorize(key.fingerprint, "team/lib.git", "read").key_id == second.id


def test_account_and_access_keys_exclude_each_other(
    host_service: HostService, make_key: MakeKey
) -> None:
    host_service.create_repository("team", "app")
    person, machine = make_key("person"), make_key("machine")
    host_service.add_account_key("team", person.public_line, label="person")
    with pytest.raises(Conflict) as caught:
        host_service.add_access_key("team", "app", person.public_line, label="x")
    assert caught.value.code == "key_is_account_key"

    host_service.add_access_key("team", "app", machine.public_line, label="machine")
    with pytest.raises(Conflict) as caught:
        host_service.add_account_key("elsewhere", machine.public_line, label="x")
    assert caught.value.code == "key_is_access_key"


def test_update_and_remove_access_key(host_service: HostService, make_key: MakeKey) -> None:
    host_service.create_repository("team", "app")
    info = host_service.add_access_key("team", "app", make_key("ci").public_line, label="ci")
    updated = host_service.update_access_key("team", "app", info.id, label="deploy", writable=True)
    assert (updated.label, updated.read_only) == ("deploy", False)
    assert host_service.update_access_key("team", "app", info.id).label == "deploy"
    host_service.remove_access_key("team", "app", info.id)
    with pytest.raises(NotFound) as caught:
        host_service.get_access_key("team", "app", info.id)
    assert caught.value.code == "access_key_not_found"
    assert caught.value.message == f"the repository team/app has no access key {info.id}"


def test_an_access_key_update_never_changes_the_key(
    host_service: HostService, make_key: MakeKey
) -> None:
    host_service.create_repository("team", "app")
    original = make_key("ci")
    info = host_service.add_access_key("team", "app", original.public_line, label="ci")

    # The stored key sent back (with or without its comment) is accepted, as Bitbucket does.
    for same in (original.public_line, " ".join(original.public_line.split()[:2])):
        updated = host_service.update_access_key("team", "app", info.id, label="ci", key=same)
        assert updated.fingerprint_sha256 == info.fingerprint_sha256

    with pytest.raises(ValidationError) as caught:
        host_service.update_access_key(
            "team", "app", info.id, label="changed", key=make_key("other").public_line
        )
    assert caught.value.code == "deploy_key_immutable"
    unchanged = host_service.get_access_key("team", "app", info.id)
    assert (unchanged.label, unchanged.key) == ("ci", info.key)

    # A missing key is reported as missing, before the sent key is even read.
    with pytest.raises(NotFound):
        host_service.update_access_key("team", "app", info.id + 1, key="not a key")


def test_access_key_of_another_repository_is_not_found_by_id(
    host_service: HostService, make_key: MakeKey
) -> None:
    host_service.create_repository("team", "app")
    host_service.create_repository("team", "lib")
    info = host_service.add_access_key("team", "app", make_key("ci").public_line, label="ci")
    with pytest.raises(NotFound):
        host_service.remove_access_key("team", "lib", info.id)


def test_bad_key_text_names_the_key_error(host_service: HostService, make_key: MakeKey) -> None:
    host_service.create_repository("team", "app")
    key = make_key("ci")
    with pytest.raises(KeyFormatError) as caught:
        host_service.add_access_key("team", "app", key.private_path.read_text(), label="ci")
    assert caught.value.code == "key_is_private"
    assert "PRIVATE" not in caught.value.message
    with pytest.raises(KeyFormatError):
        host_service.add_access_key("team", "app", "not a key", label="ci")


@pytest.mark.parametrize("label", ["", "   ", "a\nb", "x" * 201])
def test_labels_are_validated(host_service: HostService, make_key: MakeKey, label: str) -> None:
    host_service.create_repository("team", "app")
    with pytest.raises(ValidationError) as caught:
        host_service.add_access_key("team", "app", make_key("k").public_line, label=label)
    assert caught.value.code == "label_invalid"


# -- account keys -----------------------------------------------------------------------------


def test_account_keys(host_service: HostService, make_key: MakeKey) -> None:
    key = make_key("person")
    info = host_service.add_account_key("team", key.public_line, label="laptop")
    assert info.workspace == "team"
    assert host_service.list_workspaces() == ["team"]  # created with its first key
    assert host_service.list_account_keys("team") == [info]
    with pytest.raises(DuplicateKey) as caught:
        host_service.add_account_key("team", key.public_line, label="again")
    assert caught.value.code == "account_key_duplicate"
    host_service.remove_account_key("team", info.id)
    assert host_service.list_account_keys("team") == []
    with pytest.raises(NotFound) as missing:
        host_service.remove_account_key("team", info.id)
    assert missing.value.code == "account_key_not_found"
    assert missing.value.message == f"the workspace team has no account key {info.id}"


# -- authorization ----------------------------------------------------------------------------


def test_authorization_rules(host_service: HostService, make_key: MakeKey) -> None:
    host_service.create_repository("team", "app")
    host_service.create_repository("team", "lib")
    host_service.create_repository("other", "app")
    person, reader, writer = make_key("person"), make_key("reader"), make_key("writer")
    host_service.add_account_key("team", person.public_line, label="p")
    host_service.add_access_key("team", "app", reader.public_line, label="r")
    host_service.add_access_key("team", "app", writer.public_line, label="w", writable=True)

    grant = host_service.authorize(person.fingerprint, "team/lib", "write")
    assert (grant.key_kind, grant.writable, grant.repository.full_name) == (
        "account",
        True,
        "team/lib",
    )
    assert host_service.authorize(reader.fingerprint, "/team/app.git", "read").writable is False
    assert host_service.authorize(writer.fingerprint, "team/app", "write").writable is True

    with pytest.raises(PermissionDenied) as read_only:
        host_service.authorize(reader.fingerprint, "team/app", "write")
    assert read_only.value.code == "read_only_key"
    assert read_only.value.message == "this access key is read-only"

    refusals = []
    for fingerprint, path in [
        (person.fingerprint, "other/app"),  # account key of another workspace
        (reader.fingerprint, "team/lib"),  # access key of another repository
        (reader.fingerprint, "team/ghost"),  # no such repository
        ("SHA256:unknown", "team/app"),  # no such key
    ]:
        with pytest.raises(NotFound) as caught:
            host_service.authorize(fingerprint, path, "read")
        refusals.append((caught.value.code, caught.value.hint))
    assert {code for code, _ in refusals} == {"repository_not_found"}
    assert len({hint for _, hint in refusals}) == 1


def test_known_keys(host_service: HostService, make_key: MakeKey) -> None:
    host_service.create_repository("team", "app")
    person, machine = make_key("person"), make_key("machine")
    host_service.add_account_key("team", person.public_line, label="p")
    access = host_service.add_access_key("team", "app", machine.public_line, label="m")
    assert host_service.is_known_key(person.fingerprint)
    assert host_service.is_known_key(machine.fingerprint)
    assert not host_service.is_known_key("SHA256:" + "A" * 43)
    handle = host_service.find_key(machine.fingerprint)
    assert handle is not None and (handle.kind, handle.id) == ("access", access.id)
    assert host_service.key_fingerprint(handle) == machine.fingerprint
    host_service.remove_access_key("team", "app", access.id)
    assert not host_service.is_known_key(machine.fingerprint)
    assert host_service.key_fingerprint(handle) is None


def test_last_used_is_written_at_most_once_a_minute(
    host_service: HostService, host_store: Store, make_key: MakeKey
) -> None:
    host_service.create_repository("team", "app")
    key = make_key("ci")
    info = host_service.add_access_key("team", "app", key.public_line, label="ci")
    grant = host_service.authorize(key.fingerprint, "team/app", "read")
    host_service.mark_key_used(grant)
    first = host_service.get_access_key("team", "app", info.id).last_used
    assert first is not None
    host_service.mark_key_used(grant)
    assert host_service.get_access_key("team", "app", info.id).last_used == first

    # A minute later, the next use is written.
    earlier = utcnow() - timedelta(seconds=61)
    with host_store.session() as session:
        session.execute(update(AccessKey).where(AccessKey.id == info.id).values(last_used=earlier))
    host_service.mark_key_used(grant)
    later = host_service.get_access_key("team", "app", info.id).last_used
    assert later is not None and later > first


def test_changes_are_seen_by_another_service_at_once(
    host_settings: Settings, host_service: HostService, make_key: MakeKey
) -> None:
    # A second process (here: a second store) sees additions and removals without restarts.
    with Store.open(host_settings) as other_store:
        other = HostService(host_settings, other_store, runner=HardenedRunner())
        host_service.create_repository("team", "app")
        key = make_key("ci")
        info = host_service.add_access_key("team", "app", key.public_line, label="ci")
        assert other.is_known_key(key.fingerprint)
        host_service.remove_access_key("team", "app", info.id)
        assert not other.is_known_key(key.fingerprint)


def test_a_description_is_kept_changed_and_checked(host_service: HostService) -> None:
    info = host_service.create_repository("team", "app", description="line one\nline two")
    assert info.description == "line one\nline two"
    assert host_service.get_repository("team", "app").description == info.description
    assert host_service.update_repository("team", "app").description == info.description
    changed = host_service.update_repository("team", "app", description="")
    assert changed.description == ""
    for bad in ("\x1b[31mred", "x" * 4001):
        with pytest.raises(ValidationError) as refused:
            host_service.create_repository("team", "other", description=bad)
        assert refused.value.code == "description_invalid"
    assert [repo.slug for repo in host_service.list_repositories("team")] == ["app"]


def test_put_repository_creates_then_updates(host_service: HostService) -> None:
    created, was_created = host_service.put_repository("team", "app", description="a")
    assert was_created and created.description == "a"
    updated, was_created = host_service.put_repository("team", "app", description="b")
    assert not was_created and updated.id == created.id and updated.description == "b"
    with pytest.raises(ValidationError):
        host_service.put_repository("Team", "app")
