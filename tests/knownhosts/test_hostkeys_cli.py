"""``repolink hostkeys …`` run as a real command in a subprocess.

Until the lead registers the sub-app in ``repolink.cli``, the command is the real
``repolink.cli.main`` with ``hostkeys`` added first — the same error handling and exit codes
as the installed script. Once ``repolink hostkeys`` exists, the installed script is used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN
from repolink.knownhosts import SHIPPED_PINS
from repolink.settings import Settings
from support.knownhosts_support import LoopbackSSHServer

REPOLINK = Path(sys.executable).with_name("repolink")
_WITH_HOSTKEYS = (
    "import sys; from repolink import cli; from repolink.cli import hostkeys, root; "
    "root.app.add_typer(hostkeys.app, name='hostkeys'); cli.main(sys.argv[1:])"
)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env["HOME"] = str(tmp_path / "home")
    env["REPOLINK_DATA_DIR"] = str(tmp_path / "data")
    env["REPOLINK_SSH_CONNECT_TIMEOUT"] = "5"
    return env


@cache
def _command() -> tuple[str, ...]:
    probe = subprocess.run(
        [str(REPOLINK), "hostkeys", "--help"], capture_output=True, text=True, check=False
    )
    if probe.returncode == 0:
        return (str(REPOLINK),)
    return (sys.executable, "-c", _WITH_HOSTKEYS)


def repolink(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
        check=False,
    )


def assert_clean_failure(
    result: subprocess.CompletedProcess[str], code: str, *, status: int = 2
) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith(f"error: {code}: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_list_marks_the_shipped_pins(tmp_path: Path) -> None:
    result = repolink(tmp_path, "hostkeys", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {(entry["host"], entry["fingerprint"]) for entry in listed if entry["shipped"]} == {
        (pin.host, pin.documented_fingerprint) for pin in SHIPPED_PINS
    }
    table = repolink(tmp_path, "hostkeys", "list")
    assert table.returncode == 0
    assert "github.com" in table.stdout and "shipped" in table.stdout


def test_scan_prints_fingerprints_and_trusts_nothing(
    tmp_path: Path, ssh_server: LoopbackSSHServer
) -> None:
    target = f"127.0.0.1:{ssh_server.port}"
    result = repolink(tmp_path, "hostkeys", "scan", target)
    assert result.returncode == 0, result.stderr
    assert ssh_server.fingerprints()[0] in result.stdout
    assert "ssh-ed25519 AAAA" in result.stdout
    assert not (tmp_path / "data").exists()  # no store was even opened

    as_json = json.loads(repolink(tmp_path, "hostkeys", "scan", target, "--json").stdout)
    assert [entry["fingerprint"] for entry in as_json] == ssh_server.fingerprints()


def test_trust_then_list_then_remove(tmp_path: Path, ssh_server: LoopbackSSHServer) -> None:
    target = f"127.0.0.1:{ssh_server.port}"
    fingerprint = ssh_server.fingerprints()[0]

    trusted = repolink(tmp_path, "hostkeys", "trust", target, "--fingerprint", fingerprint)
    assert trusted.returncode == 0, trusted.stderr
    assert f"trusted: {target} ssh-ed25519 {fingerprint}" in trusted.stdout
    again = repolink(tmp_path, "hostkeys", "trust", target, "--fingerprint", fingerprint)
    assert "already trusted" in again.stdout

    listed = json.loads(repolink(tmp_path, "hostkeys", "list", "--json").stdout)
    mine = [entry for entry in listed if not entry["shipped"]]
    assert [(entry["name"], entry["fingerprint"]) for entry in mine] == [(target, fingerprint)]

    removed = repolink(tmp_path, "hostkeys", "remove", target, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert fingerprint in removed.stdout
    listed = json.loads(repolink(tmp_path, "hostkeys", "list", "--json").stdout)
    assert all(entry["shipped"] for entry in listed)

    # The audit log has each change once (trusting a trusted key changed nothing), by the CLI.
    with Repolink(Settings(data_dir=tmp_path / "data")) as app:
        entries = app.audit.entries(LOCAL_ADMIN).items
    assert [(e.action, e.actor, e.target) for e in entries] == [
        ("known_host.delete", LOCAL_ADMIN.username, target),
        ("known_host.trust", LOCAL_ADMIN.username, target),
    ]
    assert entries[1].details["fingerprint"] == fingerprint


def test_trust_with_a_fingerprint_the_server_does_not_present(
    tmp_path: Path, ssh_server: LoopbackSSHServer
) -> None:
    wrong = "SHA256:" + "A" * 43
    result = repolink(
        tmp_path, "hostkeys", "trust", f"127.0.0.1:{ssh_server.port}", "--fingerprint", wrong
    )
    # The server was asked and answered otherwise: a failed operation (issue 10 §1.2).
    assert_clean_failure(result, "host_key_fingerprint_mismatch", status=1)
    assert ssh_server.fingerprints()[0] in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("trust", "127.0.0.1:2222"), "fingerprint_required"),
        (("scan", "not a host"), "host_invalid"),
        (("remove", "github.com", "--yes"), "host_key_shipped"),
        (("remove", "[::1]:2222", "--yes"), "host_key_not_found"),
        (("trust", "gitlab.com", "--fingerprint", "SHA256:" + "B" * 43), "host_key_pin_conflict"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: tuple[str, ...], code: str) -> None:
    result = repolink(tmp_path, "hostkeys", *args)
    assert_clean_failure(result, code)
    if args[1].startswith("["):
        assert args[1] in result.stderr  # an IPv6 host is named as it was given
    assert CLI_FIXES.get(code, "") in result.stderr


# The CLI's own fixes, where the service's hint names no command or option.
CLI_FIXES = {
    "host_key_shipped": (
        "trust the new key with `repolink hostkeys trust github.com --fingerprint SHA256:… --force`"
    ),
    "host_key_not_found": "run `repolink hostkeys list` to see the trusted host keys",
    "host_key_pin_conflict": (
        "check the fingerprints gitlab.com publishes; if it really replaced its key, run again "
        "with --force (the shipped keys of this host then stop being trusted)"
    ),
}
