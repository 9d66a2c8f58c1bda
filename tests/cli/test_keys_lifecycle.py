"""`repolink keys list|rotate` through the real entry point, against the built-in host."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.models import KeyRecord
from support.clikit import CLI
from support.platformkit import WORKSPACE, HostedRepos, Platform

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
