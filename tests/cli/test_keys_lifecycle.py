"""`repolink keys list|rotate` through the real entry point, against the built-in host."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models import KeyRecord
from support.clikit import CLI
from support.fixtures import HOST_API_TOKEN
from support.platformkit import WORKSPACE, HostedRepos, Platform, granted_key

PUBLIC_LINE = re.compile(r"^ssh-ed25519 AAAA\S+", re.MULTILINE)
FINGERPRINT = re.compile(r"^SHA256:\S+$", re.MULTILINE)


class KeysCLI(CLI):
    """The CLI runner, wide enough for the key table, with the store of its data directory."""

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, git_timeout=120, ssh_connect_timeout=10)

    def keys(self, *args: str) -> dict[str, dict[str, Any]]:
        return {key["fingerprint_sha256"]: key for key in self.json("keys", "list", *args)}

    def age(self, fingerprint: str, **days: int | None) -> None:
        """Move a key's creation or last use ``days`` into the past, through the store."""
        now = utcnow()
        values = {
            column: (now - timedelta(days=value) if value is not None else None)
            for column, value in days.items()
        }
        with Store.open(self.settings) as store, store.session() as session:
            session.execute(
                update(KeyRecord).where(KeyRecord.fingerprint_sha256 == fingerprint).values(values)
            )


@pytest.fixture
def cli(
    tmp_path: Path,
    hosted: HostedRepos,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> KeysCLI:
    (tmp_path / "home").mkdir()
    return KeysCLI(tmp_path / "data", tmp_path / "home", capsys, monkeypatch, columns=250)


def _connect(cli: KeysCLI, hosted: HostedRepos, project: str) -> str:
    """``project`` connected to team/app with a deploy key granted there; its fingerprint."""
    with Store.open(cli.settings) as store:
        kit = Platform(cli.settings, store, hosted.host)
        kit.trust_host()
        outcome = kit.connect(project, hosted.app.url(), grant_on="app")
    assert outcome.error is None, outcome.error
    return outcome.connection.deploy_key.fingerprint_sha256


def test_rotation_end_to_end_through_the_cli(cli: KeysCLI, hosted: HostedRepos) -> None:
    key_a = _connect(cli, hosted, "clirot")

    started = cli("keys", "rotate", "clirot")
    assert started.returncode == 0, started.stderr
    public = PUBLIC_LINE.search(started.stdout)
    assert public is not None
    key_b = FINGERPRINT.findall(started.stdout)[0]
    assert key_b != key_a and key_a in started.stdout
    assert re.search(r"^MD5:", started.stdout, re.MULTILINE)
    assert "read-only access key" in started.stdout
    assert "repolink keys rotate clirot --complete" in started.stdout
    assert "PRIVATE KEY" not in started.stdout + started.stderr

    again = cli("keys", "rotate", "clirot")
    assert again.returncode == 2
    assert again.stderr.startswith("error: rotation_pending:")
    assert "--replace-pending" in again.stderr
    assert (
        "finish it: repolink keys rotate clirot --complete; or discard it: --abort; "
        "or start over with another new key: --replace-pending"
    ) in " ".join(again.stderr.split())

    listed = cli.keys()
    assert (listed[key_a]["state"], listed[key_b]["state"]) == ("active", "pending")
    assert listed[key_b]["project"] == "clirot" and listed[key_b]["last_used_at"] is None

    # Fetches keep using A.
    fetched = cli("fetch", "clirot", "--json")
    assert fetched.returncode == 0, fetched.stderr

    refused = cli("keys", "rotate", "clirot", "--complete")
    assert refused.returncode == 1
    assert "error: auth_failed:" in refused.stderr
    assert f"nothing changed: {key_a} stays the deploy key" in " ".join(refused.stderr.split())
    assert cli.json("repo", "show", "clirot")["deploy_key"]["fingerprint_sha256"] == key_a

    hosted.host.service.add_access_key(WORKSPACE, "app", public.group(0), label="clirot B")
    completed = cli("keys", "rotate", "clirot", "--complete")
    assert completed.returncode == 0, completed.stderr
    assert f"{key_b} is now the deploy key of project clirot" in completed.stdout
    assert f"retired {key_a}" in completed.stdout
    assert cli.json("repo", "show", "clirot")["deploy_key"]["fingerprint_sha256"] == key_b

    # A off the repository: fetching goes on with B.
    access_keys = hosted.host.service.list_access_keys(WORKSPACE, "app")
    key_id = next(key.id for key in access_keys if key.fingerprint_sha256 == key_a)
    hosted.host.service.remove_access_key(WORKSPACE, "app", key_id)
    hosted.app.commit("after the rotation")
    after = cli.json("fetch", "clirot")
    assert after["new_commits"] == 1

    listed = cli.keys()
    assert (listed[key_a]["state"], listed[key_b]["state"]) == ("retired", "active")
    assert listed[key_a]["retired_at"] is not None
    assert listed[key_b]["last_used_at"] > listed[key_a]["last_used_at"]


def test_list_shows_ages_last_use_flags_and_unused_keys(cli: KeysCLI, hosted: HostedRepos) -> None:
    stale = _connect(cli, hosted, "stale")
    busy = _connect(cli, hosted, "busy")
    cli.age(stale, created_at=200, last_used_at=45)
    cli.age(busy, created_at=20)

    listed = cli.keys()
    assert listed[stale]["age_days"] == 200 and listed[stale]["days_since_use"] == 45
    assert listed[stale]["flags"] == ["rotate: older than 180 days"]
    assert listed[busy]["age_days"] == 20 and listed[busy]["days_since_use"] == 0
    assert listed[busy]["flags"] == []
    assert set(cli.keys("--unused", "30")) == {stale}
    assert set(cli.keys("--unused", "60")) == set()

    text = cli("keys", "list", real_process=True)
    assert text.returncode == 0, text.stderr
    row = next(line for line in text.stdout.splitlines() if stale in line)
    assert "stale" in row and "200 d" in row and "(45 d ago)" in row
    assert "active" in row and "rotate: older than 180 days" in row
    busy_row = next(line for line in text.stdout.splitlines() if busy in line)
    assert "rotate" not in busy_row

    none = cli("keys", "list", "--unused", "365")
    assert none.returncode == 0 and "no key unused for 365 days" in none.stdout
    negative = cli("keys", "list", "--unused", "-1")
    assert negative.returncode == 2 and "invalid_usage" in negative.stderr


def test_rotate_abort_replace_and_bad_options(cli: KeysCLI, hosted: HostedRepos) -> None:
    deploy = _connect(cli, hosted, "opts")
    first = cli.json("keys", "rotate", "opts")
    assert first["current_key"]["fingerprint_sha256"] == deploy
    assert first["replaced_key"] is None

    replaced = cli.json("keys", "rotate", "opts", "--replace-pending", "--type", "rsa")
    assert replaced["replaced_key"]["id"] == first["new_key"]["id"]
    assert replaced["new_key"]["key_type"] == "ssh-rsa"

    aborted = cli("keys", "rotate", "opts", "--abort")
    assert aborted.returncode == 0, aborted.stderr
    assert replaced["new_key"]["fingerprint_sha256"] in aborted.stdout
    assert set(cli.keys()) == {deploy}
    with Repolink(cli.settings) as app:
        entries = app.audit.entries(LOCAL_ADMIN, project="opts").items
    assert [(e.action, e.actor, e.target) for e in entries] == [
        ("key.rotate_abort", "local-admin", replaced["new_key"]["fingerprint_sha256"]),
        ("key.rotate", "local-admin", replaced["new_key"]["fingerprint_sha256"]),
        ("key.rotate", "local-admin", first["new_key"]["fingerprint_sha256"]),
    ]
    assert entries[1].details["replaced_key"] == first["new_key"]["fingerprint_sha256"]

    nothing = cli("keys", "rotate", "opts", "--complete")
    assert nothing.returncode == 2 and "rotation_not_pending" in nothing.stderr
    assert "start one: repolink keys rotate opts" in nothing.stderr
    both = cli("keys", "rotate", "opts", "--complete", "--abort")
    assert both.returncode == 2 and "rotate_options_conflict" in both.stderr
    typed = cli("keys", "rotate", "opts", "--complete", "--type", "rsa")
    assert typed.returncode == 2 and "rotate_options_conflict" in typed.stderr
    unknown = cli("keys", "rotate", "no-such-project")
    assert unknown.returncode == 2 and "project_not_found" in unknown.stderr


def test_generate_and_inspect_do_not_load_the_platform(tmp_path: Path) -> None:
    probe = (
        "import sys, repolink.cli.keys; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'repolink.platform'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_rotation_of_a_registered_connection_adds_and_removes_keys_on_the_host(
    cli: KeysCLI, hosted: HostedRepos, host_api: str
) -> None:
    """Registered with --register-on-host, the host's access keys follow the rotation: the new
    key added when it starts, a discarded or retired one removed (issue 10 §1.8)."""
    token = {"REPOLINK_HOST_API_TOKEN": HOST_API_TOKEN}
    with Store.open(cli.settings) as store:
        Platform(cli.settings, store, hosted.host).trust_host()
    assert cli("project", "create", "hostrot").returncode == 0
    connected = cli(
        *("repo", "connect", "hostrot", hosted.other.url(), "--generate", "--register-on-host"),
        *("--host-api", host_api),
        env=token,
    )
    assert connected.returncode == 0, connected.stderr
    key_a = cli.json("repo", "show", "hostrot")["deploy_key"]["fingerprint_sha256"]

    def on_host() -> set[str]:
        keys = hosted.host.service.list_access_keys(WORKSPACE, "other")
        return {key.fingerprint_sha256 for key in keys if key.label == "repolink hostrot"}

    assert on_host() == {key_a}

    missing = cli("keys", "rotate", "hostrot")
    assert missing.returncode == 2 and missing.stderr.startswith("error: host_api_missing:")
    refused = cli("keys", "rotate", "hostrot", env={"REPOLINK_HOST_API_TOKEN": "wrong"})
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: host_api_unauthorized:")
    assert set(cli.keys()) == {key_a}  # nothing started: the new key was discarded
    assert on_host() == {key_a}

    started = cli("keys", "rotate", "hostrot", env=token)
    assert started.returncode == 0, started.stderr
    key_b = FINGERPRINT.findall(started.stdout)[0]
    assert f"registered as a read-only access key of {WORKSPACE}/other" in started.stdout
    assert "Add this public key" not in started.stdout
    assert on_host() == {key_a, key_b}

    replaced = cli("keys", "rotate", "hostrot", "--replace-pending", env=token)
    assert replaced.returncode == 0, replaced.stderr
    key_c = FINGERPRINT.findall(replaced.stdout)[0]
    assert f"removed the previous pending key {key_b}" in replaced.stdout
    assert on_host() == {key_a, key_c}

    aborted = cli("keys", "rotate", "hostrot", "--abort", env=token)
    assert aborted.returncode == 0, aborted.stderr
    assert f"removed the discarded key {key_c}" in aborted.stdout
    assert on_host() == {key_a}

    as_json = cli("keys", "rotate", "hostrot", "--json", env=token)
    assert as_json.returncode == 0, as_json.stderr
    key_d = json.loads(as_json.stdout)["new_key"]["fingerprint_sha256"]
    assert json.loads(as_json.stdout)["on_host"]["error"] is None
    assert on_host() == {key_a, key_d}
    completed = cli("keys", "rotate", "hostrot", "--complete", env=token)
    assert completed.returncode == 0, completed.stderr
    assert f"{key_d} is now the deploy key of project hostrot" in completed.stdout
    assert f"removed the retired key {key_a}" in completed.stdout
    assert on_host() == {key_d}
    hosted.other.commit("after a rotation the host followed")
    assert cli.json("fetch", "hostrot")["new_commits"] == 1

    # A removal the host refuses does not undo the step: it is said, with what to remove.
    key_e = FINGERPRINT.findall(cli("keys", "rotate", "hostrot", env=token).stdout)[0]
    kept = cli("keys", "rotate", "hostrot", "--abort", env={"REPOLINK_HOST_API_TOKEN": "wrong"})
    assert kept.returncode == 0, kept.stderr
    assert f"discarded the pending key {key_e}" in kept.stdout
    assert kept.stderr.startswith("warning: host_api_unauthorized:")
    assert f"{key_e} is still an access key of {WORKSPACE}/other" in " ".join(kept.stderr.split())
    assert on_host() == {key_d, key_e}
    assert set(cli.keys()) == {key_a, key_d}


def test_rotate_to_an_imported_key(cli: KeysCLI, hosted: HostedRepos, tmp_path: Path) -> None:
    deploy = _connect(cli, hosted, "imp")
    mine = granted_key(hosted.host, "app", "imp cli")
    key_file = tmp_path / "id_next"
    key_file.write_bytes(mine.to_openssh(b"open sesame"))
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("open sesame\n")

    for args, code in [
        (("--key", str(key_file), "--type", "rsa"), "key_choice_required"),
        (("--passphrase-file", str(passphrase)), "passphrase_without_key"),
        (("--complete", "--key", str(key_file)), "rotate_options_conflict"),
    ]:
        refused = cli("keys", "rotate", "imp", *args)
        assert refused.returncode == 2 and code in refused.stderr, refused.stderr

    started = cli(
        "keys", "rotate", "imp", "--key", str(key_file), "--passphrase-file", str(passphrase)
    )
    assert started.returncode == 0, started.stderr
    assert "imported ssh-ed25519 key for project imp" in started.stdout
    assert mine.public_key.sha256_fingerprint in started.stdout
    assert "PRIVATE" not in started.stdout + started.stderr
    completed = cli.json("keys", "rotate", "imp", "--complete")
    assert completed["deploy_key"]["fingerprint_sha256"] == mine.public_key.sha256_fingerprint
    assert completed["retired_key"]["fingerprint_sha256"] == deploy
