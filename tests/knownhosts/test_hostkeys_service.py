"""The known-hosts store: pins, trust, list, remove, known_hosts rendering."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from repolink.errors import Conflict, GitError, NotFound, ValidationError
from repolink.git.keyscan import scan
from repolink.git.runner import HardenedRunner
from repolink.keys import generate_key
from repolink.knownhosts import (
    SHIPPED_PINS,
    ScannedHostKey,
    known_hosts_text,
    list_known_hosts,
    remove,
    trust,
    trusted_keys,
)
from repolink.netpolicy import NetworkPolicy
from repolink.platform.known_hosts import KnownHostService
from repolink.platform.targets import TargetPolicy
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.base import Base
from repolink.store.models.known_hosts import KnownHost
from repolink.urls import SSHURL, parse_ssh_url
from support.knownhosts_support import LoopbackSSHServer, host_key
from support.transactions import track_sessions

GITHUB_PINS = {pin.documented_fingerprint for pin in SHIPPED_PINS if pin.host == "github.com"}


def real_scan(host: str, port: int) -> list[ScannedHostKey]:
    return scan(host, port, runner=HardenedRunner(), connect_timeout=5)


def no_contact(host: str, port: int) -> list[ScannedHostKey]:
    raise AssertionError(f"{host}:{port} must not be contacted")


def store_row(store: Store, host: str, port: int) -> str:
    """A stored key for a host no test server listens on (rendering only)."""
    key = generate_key("ed25519").public_key
    with store.session() as session:
        session.add(
            KnownHost(
                host=host,
                port=port,
                key_type=key.key_type,
                public_key=key.openssh_line(with_comment=False),
                fingerprint_sha256=key.sha256_fingerprint,
                overrides_pin=False,
                created_at=utcnow(),
            )
        )
    return key.sha256_fingerprint


def keygen_find(known_hosts: Path, name: str) -> list[str]:
    """The key lines ``ssh-keygen -F NAME`` finds: OpenSSH's own known_hosts lookup."""
    result = subprocess.run(
        ["ssh-keygen", "-F", name, "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line for line in result.stdout.splitlines() if line and not line.startswith("#")]


# --- schema ---------------------------------------------------------------------------------


def test_migration_0004_matches_the_model(store: Store) -> None:
    def mine(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) == "known_hosts"

    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": mine}
        )
        assert compare_metadata(context, Base.metadata) == []
        inspector = inspect(connection)
        assert {ix["name"] for ix in inspector.get_indexes("known_hosts")} == {
            "ix_known_hosts_host_port"
        }
        assert [uq["name"] for uq in inspector.get_unique_constraints("known_hosts")] == [
            "uq_known_hosts_host_port_fingerprint"
        ]
    assert store.current_revision() is not None


# --- pins and rendering ---------------------------------------------------------------------


def test_pinned_hosts_are_trusted_out_of_the_box(store: Store) -> None:
    with store.session() as session:
        github = trusted_keys(session, "GitHub.com", 22)
        assert {key.fingerprint for key in github} == GITHUB_PINS
        assert all(key.shipped and key.reference for key in github)
        assert trusted_keys(session, "github.com", 2222) == []
        assert trusted_keys(session, "git.example.com") == []


def test_known_hosts_text_holds_exactly_the_requested_hosts_and_ssh_finds_them(
    store: Store, tmp_path: Path
) -> None:
    other = store_row(store, "git.example.com", 2222)
    v6 = store_row(store, "::1", 22)
    v6_port = store_row(store, "::1", 2200)
    targets: list[SSHURL | tuple[str, int]] = [
        parse_ssh_url("git@github.com:team/repo.git"),
        parse_ssh_url("ssh://git@GIT.example.com:2222/team/repo.git"),
        parse_ssh_url("git@github.com:team/other.git"),  # same host twice: lines once
        ("::1", 22),
        ("::1", 2200),
        ("nothing-trusted.example", 22),
    ]
    with store.session() as session:
        text = known_hosts_text(session, targets)
    lines = text.splitlines()
    assert len(lines) == len(set(lines)) == 6
    assert text.endswith("\n")

    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(text)
    assert len(keygen_find(known_hosts, "github.com")) == 3
    found = keygen_find(known_hosts, "[git.example.com]:2222")
    assert len(found) == 1 and found[0].startswith("[git.example.com]:2222 ssh-ed25519 ")
    assert keygen_find(known_hosts, "git.example.com") == []  # port 22 is another host
    assert len(keygen_find(known_hosts, "::1")) == 1
    assert len(keygen_find(known_hosts, "[::1]:2200")) == 1
    assert keygen_find(known_hosts, "gitlab.com") == []  # pinned, but not requested
    assert keygen_find(known_hosts, "nothing-trusted.example") == []

    listing = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(known_hosts)], capture_output=True, text=True, check=True
    ).stdout
    assert {other, v6, v6_port} | GITHUB_PINS == {line.split()[1] for line in listing.splitlines()}


def test_known_hosts_text_for_no_targets_is_empty(store: Store) -> None:
    with store.session() as session:
        assert known_hosts_text(session, []) == ""


# --- trust ----------------------------------------------------------------------------------


def test_trust_with_the_presented_fingerprint_stores_exactly_that_key(
    store: Store, ssh_server: LoopbackSSHServer
) -> None:
    ssh_server.restart([host_key("ssh-ed25519"), host_key("ecdsa-sha2-nistp256")])
    wanted = ssh_server.fingerprints()[1]
    with store.session() as session:
        outcome = trust(session, "127.0.0.1", ssh_server.port, wanted, scanner=real_scan)
    assert outcome.created
    assert outcome.key.fingerprint == wanted
    assert outcome.key.key_type == "ecdsa-sha2-nistp256"
    with store.session() as session:
        trusted = trusted_keys(session, "127.0.0.1", ssh_server.port)
        assert [key.fingerprint for key in trusted] == [wanted]
        assert trusted[0].source == "stored" and trusted[0].trusted_at is not None
        again = trust(session, "127.0.0.1", ssh_server.port, wanted, scanner=no_contact)
    assert not again.created


def test_trust_with_a_fingerprint_the_server_does_not_present_stores_nothing(
    store: Store, ssh_server: LoopbackSSHServer
) -> None:
    presented = ssh_server.fingerprints()[0]
    other = generate_key("ed25519").public_key.sha256_fingerprint
    # The server was asked and showed other keys: a failed operation, not bad input.
    with store.session() as session, pytest.raises(GitError) as caught:
        trust(session, "127.0.0.1", ssh_server.port, other, scanner=real_scan)
    assert caught.value.code == "host_key_fingerprint_mismatch"
    assert presented in caught.value.message
    assert other in caught.value.message
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(KnownHost)) == 0


def test_trust_refuses_another_key_for_a_pinned_host_without_contacting_it(store: Store) -> None:
    other = generate_key("ed25519").public_key.sha256_fingerprint
    with store.session() as session, pytest.raises(Conflict) as caught:
        trust(session, "github.com", 22, other, scanner=no_contact)
    assert caught.value.code == "host_key_pin_conflict"
    assert "forcing the override" in caught.value.hint and "--" not in caught.value.hint
    assert caught.value.context == {"host": "github.com", "name": "github.com"}


def test_a_pinned_key_is_already_trusted(store: Store) -> None:
    pinned = next(iter(GITHUB_PINS))
    with store.session() as session:
        outcome = trust(session, "github.com", 22, pinned, scanner=no_contact)
    assert not outcome.created and outcome.key.shipped


def test_forced_trust_overrides_the_pins_until_removed(
    store: Store, ssh_server: LoopbackSSHServer
) -> None:
    # github.com cannot be served from here: the scanner asks the loopback server instead,
    # and reports its real keys under the name that was asked for.
    def loopback_as_asked(host: str, port: int) -> list[ScannedHostKey]:
        return [
            ScannedHostKey(host, port, key.key) for key in real_scan("127.0.0.1", ssh_server.port)
        ]

    new_key = ssh_server.fingerprints()[0]
    with store.session() as session:
        outcome = trust(session, "github.com", 22, new_key, scanner=loopback_as_asked, force=True)
    assert outcome.created and outcome.key.overrides_pin

    with store.session() as session:
        assert [key.fingerprint for key in trusted_keys(session, "github.com", 22)] == [new_key]
        listed = [key for key in list_known_hosts(session) if key.host == "github.com"]
        assert {key.fingerprint for key in listed if key.overridden} == GITHUB_PINS
        text = known_hosts_text(session, [("github.com", 22)])
    assert text == f"github.com {outcome.key.public_line}\n"

    with store.session() as session:
        removed = remove(session, "github.com", 22)
    assert [key.fingerprint for key in removed] == [new_key]
    with store.session() as session:
        assert {key.fingerprint for key in trusted_keys(session, "github.com", 22)} == GITHUB_PINS


# --- list and remove ------------------------------------------------------------------------


def test_list_shows_every_pin_marked_shipped_and_stored_keys(store: Store) -> None:
    stored = store_row(store, "git.example.com", 2222)
    with store.session() as session:
        listed = list_known_hosts(session)
    assert {key.fingerprint for key in listed if key.shipped} == {
        pin.documented_fingerprint for pin in SHIPPED_PINS
    }
    mine = [key for key in listed if not key.shipped]
    assert [(key.name, key.fingerprint) for key in mine] == [("git.example.com:2222", stored)]
    assert [key.host for key in listed] == sorted(key.host for key in listed)


def test_shipped_pins_cannot_be_removed(store: Store) -> None:
    pinned = next(iter(GITHUB_PINS))
    for fingerprint in (None, pinned):
        with store.session() as session, pytest.raises(Conflict) as caught:
            remove(session, "github.com", 22, fingerprint)
        assert caught.value.code == "host_key_shipped"
    with store.session() as session:
        assert len(trusted_keys(session, "github.com", 22)) == 3


def test_remove_one_or_all_stored_keys(store: Store) -> None:
    first = store_row(store, "git.example.com", 2222)
    second = store_row(store, "git.example.com", 2222)
    with store.session() as session:
        removed = remove(session, "git.example.com", 2222, first)
    assert [key.fingerprint for key in removed] == [first]
    with store.session() as session:
        assert [key.fingerprint for key in trusted_keys(session, "git.example.com", 2222)] == [
            second
        ]
        remove(session, "git.example.com", 2222)
        assert trusted_keys(session, "git.example.com", 2222) == []
    with store.session() as session, pytest.raises(NotFound) as caught:
        remove(session, "git.example.com", 2222)
    assert caught.value.code == "host_key_not_found"


# --- the platform's service: one transaction each, the scan between two ----------------------


def test_the_service_trusts_lists_and_removes_scanning_outside_any_transaction(
    settings: Settings, store: Store, ssh_server: LoopbackSSHServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_sessions = track_sessions(store, monkeypatch)
    held: list[int] = []

    def scanner(host: str, port: int) -> list[ScannedHostKey]:
        held.append(len(open_sessions))
        return real_scan(host, port)

    service = KnownHostService(settings, lambda: store, scanner=scanner)
    wanted = ssh_server.fingerprints()[0]

    outcome = service.trust("127.0.0.1", ssh_server.port, wanted)
    assert outcome.created and held == [0]
    assert not service.trust("127.0.0.1", ssh_server.port, wanted).created
    assert held == [0]  # trusted already: not contacted again
    assert [key.fingerprint for key in service.scan("127.0.0.1", ssh_server.port)] == (
        ssh_server.fingerprints()
    )
    assert wanted in {key.fingerprint for key in service.list_known_hosts()}
    removed = service.remove("127.0.0.1", ssh_server.port)
    assert [key.fingerprint for key in removed] == [wanted]
    with pytest.raises(GitError) as mismatch:
        service.trust("127.0.0.1", ssh_server.port, generate_key().public_key.sha256_fingerprint)
    assert mismatch.value.code == "host_key_fingerprint_mismatch"
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(KnownHost)) == 0


# --- the service on a client's behalf: the network policy, removal by id -----------------------


def test_a_client_s_scan_obeys_the_network_policy(
    settings: Settings, store: Store, ssh_server: LoopbackSSHServer
) -> None:
    service = KnownHostService(settings, lambda: store, scanner=no_contact)
    public_only = TargetPolicy(NetworkPolicy())
    for host in ("127.0.0.1", "localhost", "169.254.169.254", "0x7f.1", "[::ffff:10.0.0.1]"):
        with pytest.raises(ValidationError) as refused:
            service.scan(host, 22, targets=public_only)
        assert refused.value.code == "host_key_scan_forbidden"
        assert "REPOLINK_ALLOWED_NETWORKS" in refused.value.hint
        with pytest.raises(ValidationError):
            service.trust(host, 22, "SHA256:" + "A" * 43, targets=public_only)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(KnownHost)) == 0

    # The server's own SSH host is always allowed; so is a network the operator allowed.
    real = KnownHostService(settings, lambda: store, scanner=real_scan)
    own = TargetPolicy(NetworkPolicy(), own_hosts=[("127.0.0.1", ssh_server.port)])
    allowed = TargetPolicy(NetworkPolicy.from_text("127.0.0.0/8"))
    for targets in (own, allowed):
        keys = real.scan("127.0.0.1", ssh_server.port, targets=targets)
        assert [key.fingerprint for key in keys] == ssh_server.fingerprints()


def test_a_name_is_scanned_at_the_address_judged_and_reported_by_its_name(
    settings: Settings, store: Store
) -> None:
    asked: list[tuple[str, int]] = []
    presented = generate_key().public_key

    def scanner(host: str, port: int) -> list[ScannedHostKey]:
        asked.append((host, port))
        return [ScannedHostKey(host, port, presented)]

    service = KnownHostService(settings, lambda: store, scanner=scanner)
    loopback = TargetPolicy(NetworkPolicy.from_text("127.0.0.0/8,::1/128"))
    [key] = service.scan("LOCALHOST", 2222, targets=loopback)
    assert asked[0] in {("127.0.0.1", 2222), ("::1", 2222)}
    assert (key.host, key.port, key.fingerprint) == (
        "localhost",
        2222,
        presented.sha256_fingerprint,
    )
    with pytest.raises(ValidationError) as unknown:  # the client's input: 400, not 502
        service.scan("no-such-host.invalid", 22, targets=loopback)
    assert unknown.value.code == "dns_failed" and len(asked) == 1


def test_a_stored_key_is_removed_by_its_id(store: Store) -> None:
    fingerprint = store_row(store, "git.example.com", 22)
    service = KnownHostService(Settings(), lambda: store, scanner=no_contact)
    [stored] = [key for key in service.list_known_hosts() if key.fingerprint == fingerprint]
    assert stored.id is not None and stored.as_dict()["id"] == stored.id
    assert all(key.id is None for key in service.list_known_hosts() if key.shipped)
    assert service.remove_by_id(stored.id).fingerprint == fingerprint
    with pytest.raises(NotFound) as gone:
        service.remove_by_id(stored.id)
    assert gone.value.code == "host_key_not_found"
