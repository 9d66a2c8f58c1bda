"""Additional keys: stored like deploy keys, named by fingerprint, selected for build jobs; the
``additional-keys`` and ``key-rules`` commands; the migration that creates their tables."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from repolink import cli as cli_root
from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN
from repolink.errors import RepolinkError
from repolink.keys import PrivateKey, generate_key
from repolink.platform.additional_keys import (
    AdditionalKeyService,
    parse_hostname,
    parse_key_fingerprint,
)
from repolink.platform.connections import create_connection, parse_connection_url
from repolink.platform.projects import ProjectService
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.base import Base
from repolink.store.key_records import load_private_key
from repolink.store.models import KeyRecord
from repolink.store.models.platform import KEY_GENERATED
from repolink.store.models.platform_keys import AdditionalKey, KeyRule
from repolink.vault import Vault

pytestmark = pytest.mark.databases

MY_TABLES = {"additional_keys", "key_rules"}


@pytest.fixture
def keys(settings: Settings, store: Store, vault: Vault) -> AdditionalKeyService:
    """The additional keys service of an application on the test's store and vault."""
    return Repolink(settings, store=store, vault=vault).additional_keys


@pytest.fixture
def deploy_key(store: Store, vault: Vault) -> PrivateKey:
    """Project ``proj``, connected (no fetch) with this deploy key."""
    key = generate_key()
    ProjectService(Settings(), store).create_project("Proj", slug="proj")
    with store.session() as session:
        create_connection(
            session,
            vault,
            "proj",
            parse_connection_url("git@git.example.com:team/app.git"),
            key,
            origin=KEY_GENERATED,
        )
    return key


# -- the tables -------------------------------------------------------------------------------


def test_migration_0007_matches_the_models(store: Store) -> None:
    def mine(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) in MY_TABLES

    assert {AdditionalKey.__tablename__, KeyRule.__tablename__} == MY_TABLES
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": mine}
        )
        assert compare_metadata(context, Base.metadata) == []


# -- fingerprints and host names --------------------------------------------------------------


def test_fingerprints_are_read_as_people_paste_them() -> None:
    key = generate_key().public_key
    sha, md5 = key.sha256_fingerprint, key.md5_fingerprint
    body = sha.removeprefix("SHA256:")
    for text in (sha, f"  {sha} ", "sha256:" + body):
        assert parse_key_fingerprint(text).value == sha
    bare_md5 = md5.removeprefix("MD5:")
    for text in (md5, bare_md5, bare_md5.upper(), "md5:" + bare_md5):
        assert parse_key_fingerprint(text).value == md5


@pytest.mark.parametrize("text", ["", "SHA256:short", "nope", "aa:bb", "-----BEGIN OPENSSH"])
def test_bad_fingerprints_are_refused_without_echo(text: str) -> None:
    with pytest.raises(RepolinkError) as caught:
        parse_key_fingerprint(text)
    assert caught.value.code == "fingerprint_invalid"
    if text:
        assert text not in caught.value.message


def test_a_pasted_private_key_is_never_echoed() -> None:
    pasted = generate_key().to_openssh().decode()
    with pytest.raises(RepolinkError) as caught:
        parse_key_fingerprint(pasted)
    text = caught.value.one_line() + repr(caught.value)
    assert "PRIVATE KEY" not in text and pasted.splitlines()[1] not in text


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", ("", None)),
        ("   ", ("", None)),
        ("Git.Example.com", ("git.example.com", None)),
        ("git.example.com:2222", ("git.example.com", 2222)),
        ("git.example.com:22", ("git.example.com", 22)),
        ("[2001:db8::1]", ("2001:db8::1", None)),
        ("[2001:db8::1]:2222", ("2001:db8::1", 2222)),
        ("2001:db8::1", ("2001:db8::1", None)),
    ],
)
def test_host_names(text: str, parsed: tuple[str, int | None]) -> None:
    assert parse_hostname(text) == parsed


@pytest.mark.parametrize("text", ["-oProxyCommand=x", "bad host", "host:99999", "host:x"])
def test_bad_host_names_are_refused(text: str) -> None:
    with pytest.raises(RepolinkError) as caught:
        parse_hostname(text)
    assert caught.value.code in ("host_invalid", "port_invalid")


# -- the service ------------------------------------------------------------------------------


def test_generated_and_imported_keys_are_stored_encrypted(
    store: Store, vault: Vault, keys: AdditionalKeyService, deploy_key: PrivateKey
) -> None:
    imported = generate_key("ecdsa")
    generated = keys.add_key("proj", hostname="git.example.com:2222")
    taken = keys.add_key("proj", imported)
    assert (generated.origin, generated.key_type, generated.hostname) == (
        "generated",
        "ssh-ed25519",
        "git.example.com:2222",
    )
    assert (taken.origin, taken.hostname) == ("imported", "")
    assert taken.fingerprint_sha256 == imported.public_key.sha256_fingerprint
    listed = keys.list_keys("proj")
    assert [info.id for info in listed] == [generated.id, taken.id]
    with store.session() as session:
        record = session.get(KeyRecord, taken.key_record_id)
        assert record is not None and record.private_key_encrypted is not None
        assert imported.to_openssh() not in record.private_key_encrypted
        assert load_private_key(session, vault, taken.key_record_id) == imported
    document = json.dumps([info.as_dict() for info in listed])
    assert "PRIVATE" not in document and "private" not in document


def test_the_same_key_twice_and_the_deploy_key_are_refused(
    keys: AdditionalKeyService, deploy_key: PrivateKey
) -> None:
    key = generate_key()
    keys.add_key("proj", key)
    refusals = ((key, "additional_key_exists"), (deploy_key, "additional_key_is_deploy_key"))
    for candidate, code in refusals:
        with pytest.raises(RepolinkError) as caught:
            keys.add_key("proj", candidate, hostname="other.example")
        assert caught.value.code == code
        assert "--" not in caught.value.hint  # the CLI names its options, the service does not
    assert len(keys.list_keys("proj")) == 1


def test_build_jobs_select_keys_by_fingerprint(
    store: Store, vault: Vault, keys: AdditionalKeyService, deploy_key: PrivateKey
) -> None:
    first = keys.add_key("proj")
    second = keys.add_key("proj", hostname="git.example.com")
    keys.add_key("proj")

    asked = [
        second.fingerprint_md5.removeprefix("MD5:"),
        first.fingerprint_sha256,
        second.fingerprint_sha256,
    ]
    chosen = keys.select_keys("proj", asked)
    assert [info.key_record_id for info in chosen] == [
        second.key_record_id,
        first.key_record_id,
    ]
    assert len(keys.select_keys("proj", None)) == 3
    assert keys.select_keys("proj", []) == []
    # A job gets the private halves it asked for.
    with store.session() as session:
        loaded = load_private_key(session, vault, chosen[0].key_record_id)
    assert loaded.public_key.sha256_fingerprint == second.fingerprint_sha256


def test_an_unknown_fingerprint_fails_the_whole_selection(
    keys: AdditionalKeyService, deploy_key: PrivateKey
) -> None:
    stranger = generate_key().public_key.sha256_fingerprint
    known = keys.add_key("proj").fingerprint_sha256
    with pytest.raises(RepolinkError) as caught:
        keys.select_keys("proj", [known, stranger])
    assert caught.value.code == "additional_key_not_found"
    assert stranger in caught.value.message
    assert caught.value.hint == "list the project's additional keys to see their fingerprints"
    assert caught.value.context["project"] == "proj"
    deploy = deploy_key.public_key.sha256_fingerprint
    with pytest.raises(RepolinkError) as deploy_asked:
        keys.select_keys("proj", [deploy])
    assert deploy_asked.value.code == "additional_key_not_found"
    assert "deploy key" in deploy_asked.value.message
    with pytest.raises(RepolinkError) as no_project:
        keys.select_keys("nope", [known])
    assert no_project.value.code == "project_not_found"


def test_removing_a_key_removes_its_key_pair(
    store: Store, keys: AdditionalKeyService, deploy_key: PrivateKey
) -> None:
    info = keys.add_key("proj")
    assert keys.find_key("proj", info.fingerprint_md5).id == info.id
    keys.remove_key("proj", info.fingerprint_md5)
    assert keys.list_keys("proj") == []
    with store.session() as session:
        assert session.scalar(select(KeyRecord).where(KeyRecord.id == info.key_record_id)) is None
    with pytest.raises(RepolinkError) as caught:
        keys.remove_key("proj", info.fingerprint_sha256)
    assert caught.value.code == "additional_key_not_found"


# -- the commands -----------------------------------------------------------------------------

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def repolink(
    settings: Settings,
    deploy_key: PrivateKey,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Run:
    """``repolink ARGS…`` through the real entry point, on the test's data directory."""
    for name in [name for name in os.environ if name.startswith("REPOLINK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REPOLINK_DATA_DIR", str(settings.data_dir))

    def run(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli_root.main(list(args))
        out, err = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 1), out, err

    return run


def test_additional_keys_commands(repolink: Run, tmp_path: Path, settings: Settings) -> None:
    code, out, err = repolink("additional-keys", "add", "proj", "--generate", "--host", "h.example")
    assert code == 0, err
    assert "for h.example" in out and "ssh-ed25519 AAAA" in out and "PRIVATE" not in out
    generated = next(line for line in out.splitlines() if line.startswith("SHA256:"))

    imported = generate_key()
    key_file = tmp_path / "id_extra"
    key_file.write_bytes(imported.to_openssh())
    code, out, err = repolink("additional-keys", "add", "proj", "--key", str(key_file), "--json")
    assert code == 0, err
    assert json.loads(out)["fingerprint_sha256"] == imported.public_key.sha256_fingerprint
    code, out, err = repolink(
        "additional-keys", "add", "proj", "--key", "-", stdin=generate_key().to_openssh()
    )
    assert code == 0, err

    code, out, _err = repolink("additional-keys", "list", "proj", "--json")
    assert [item["hostname"] for item in json.loads(out)] == ["h.example", "", ""]
    code, out, _err = repolink("additional-keys", "list", "proj")
    assert generated in out and "(any host)" in out

    code, _out, err = repolink("additional-keys", "add", "proj", "--generate", "--key", "x")
    assert code == 2 and "key_choice_required" in err
    code, _out, err = repolink("additional-keys", "remove", "proj", generated, "--yes")
    assert code == 0, err
    code, _out, err = repolink("additional-keys", "remove", "proj", generated, "--yes")
    assert code == 2 and err.startswith("error: additional_key_not_found: ")
    with Repolink(settings) as app:
        entries = app.audit.entries(LOCAL_ADMIN, project="proj").items
    assert [(e.action, e.actor) for e in entries] == [
        ("additional_key.delete", "local-admin"),
        *[("additional_key.create", "local-admin")] * 3,
    ]
    assert (entries[0].target, entries[-1].target) == (generated, generated)
    # The CLI says its own commands and options where the service's hint is neutral.
    assert "— run `repolink additional-keys list proj` to see its keys and their fingerprints" in (
        " ".join(err.split())
    )
    code, _out, err = repolink("additional-keys", "add", "proj", "--key", str(key_file))
    assert code == 2 and "remove it and add it again with that --host" in err
    code, _out, err = repolink("additional-keys", "remove", "proj", "nope", "--yes")
    assert code == 2 and "copy it from `repolink additional-keys list PROJECT`, like SHA256:" in err


def test_key_rules_commands(repolink: Run, deploy_key: PrivateKey, settings: Settings) -> None:
    code, out, _err = repolink("additional-keys", "add", "proj", "--generate", "--json")
    extra = json.loads(out)["fingerprint_sha256"]

    code, out, err = repolink(
        "key-rules", "add", "proj", "git@h.example:team/lib.git", "--key", extra
    )
    assert code == 0, err
    assert out.strip() == f"key rule ssh://git@h.example/team/lib → additional key {extra}"
    code, out, err = repolink(
        "key-rules", "add", "proj", "ssh://git@h.example/team/", "--key", "deploy"
    )
    assert code == 0, err

    code, out, _err = repolink("key-rules", "list", "proj", "--json")
    assert [(rule["prefix"], rule["key"]) for rule in json.loads(out)] == [
        ("ssh://git@h.example/team/lib", extra),
        ("ssh://git@h.example/team", "deploy"),
    ]
    code, out, _err = repolink("key-rules", "list", "proj")
    assert out.splitlines() == [
        f"ssh://git@h.example/team/lib → additional key {extra}",
        "ssh://git@h.example/team → the deploy key",
    ]
    code, out, _err = repolink("key-rules", "which", "proj", "git@h.example:team/lib/sub.git")
    assert out.strip() == (
        f"ssh://git@h.example/team/lib/sub: additional key {extra} "
        "(key rule ssh://git@h.example/team/lib)"
    )
    code, out, _err = repolink("key-rules", "which", "proj", "git@h.example:team/app", "--json")
    document = json.loads(out)
    assert document["source"] == "key_rule"
    assert document["fingerprint_sha256"] == deploy_key.public_key.sha256_fingerprint

    code, _out, err = repolink("additional-keys", "remove", "proj", extra, "--yes")
    assert code == 2 and "additional_key_in_use" in err
    assert "remove them first: repolink key-rules remove proj PREFIX" in err
    deploy = deploy_key.public_key.sha256_fingerprint
    code, _out, err = repolink("key-rules", "add", "proj", "git@h.example:x/", "--key", deploy)
    assert code == 2 and "ask only for additional keys (repolink additional-keys list proj)" in err
    code, _out, err = repolink(
        "key-rules", "add", "proj", "ssh://git@h.example/team", "--key", "deploy"
    )
    assert code == 2 and (
        "remove it first: repolink key-rules remove proj ssh://git@h.example/team" in err
    )
    code, out, err = repolink(
        "key-rules", "remove", "proj", "ssh://git@h.example/team/lib.git", "--yes"
    )
    assert code == 0 and "removed key rule ssh://git@h.example/team/lib" in out
    code, out, err = repolink(
        "key-rules", "remove", "proj", "ssh://git@h.example/team/lib.git", "--yes"
    )
    assert code == 2 and "run `repolink key-rules list proj` to see its rules" in err
    code, _out, err = repolink(
        "key-rules", "add", "proj", "https://h.example/team", "--key", "deploy"
    )
    assert code == 2 and err.startswith("error: key_rule_prefix_invalid: ")
    assert len(err.strip().splitlines()) == 1
    with Repolink(settings) as app:
        rules = [
            (e.action, e.target)
            for e in app.audit.entries(LOCAL_ADMIN, project="proj").items
            if e.action.startswith("key_rule.")
        ]
    assert rules == [
        ("key_rule.delete", "ssh://git@h.example/team/lib"),
        ("key_rule.create", "ssh://git@h.example/team"),
        ("key_rule.create", "ssh://git@h.example/team/lib"),
    ]


def test_a_key_is_found_and_removed_by_its_id_too(
    store: Store, keys: AdditionalKeyService, deploy_key: PrivateKey
) -> None:
    first, second = keys.add_key("proj"), keys.add_key("proj", hostname="h:2222")
    assert keys.find_key("proj", first.id) == first
    assert keys.remove_key("proj", second.id) == second
    assert keys.list_keys("proj") == [first]
    for missing in (second.id, "f" * 32):
        with pytest.raises(RepolinkError) as caught:
            keys.remove_key("proj", missing)
        assert (caught.value.code, caught.value.context) == (
            "additional_key_not_found",
            {"project": "proj"},
        )
    ProjectService(Settings(), store).create_project("Other", slug="other")
    with pytest.raises(RepolinkError) as elsewhere:
        keys.find_key("other", first.id)  # an id names a key of its own project only
    assert elsewhere.value.code == "additional_key_not_found"
