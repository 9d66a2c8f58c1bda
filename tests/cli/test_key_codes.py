"""One code per key mistake, whichever command reads the key (issue 10 §1.10): ``keys inspect``,
``repo connect --key`` and ``additional-keys add --key`` use one parser, name the same precise
code, give the same fix, and report the repairs they made."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from support.clikit import CLI
from support.platformkit import WORKSPACE, HostedRepos

PASSPHRASE = "correct horse"


@pytest.fixture
def cli(trusting_cli: CLI) -> CLI:
    assert trusting_cli("project", "create", "web").returncode == 0
    return trusting_cli


def _ssh_keygen(path: Path, passphrase: str = "") -> bytes:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f", str(path)],
        check=True,
    )
    return path.read_bytes()


def _cut_off(key: bytes) -> bytes:
    return b"\n".join(key.strip().splitlines()[:-1]) + b"\n"


def _headless(key: bytes) -> bytes:
    return b"\n".join(key.strip().splitlines()[1:]) + b"\n"


def _wrong_passphrase(tmp_path: Path) -> Path:
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not it\n")
    return wrong


MISTAKES: dict[str, tuple[Callable[[bytes], bytes], bool, str]] = {
    # name: (what is done to a protected key's text, give a wrong passphrase, expected code)
    "cut off": (_cut_off, False, "key_missing_footer"),
    "no header": (_headless, False, "key_missing_header"),
    "empty": (lambda _key: b"", False, "key_empty"),
    "no passphrase": (lambda key: key, False, "key_passphrase_required"),
    "wrong passphrase": (lambda key: key, True, "key_wrong_passphrase"),
}

COMMANDS: dict[str, list[str]] = {
    "keys inspect": ["keys", "inspect", "-"],
    "repo connect": ["repo", "connect", "web", "git@example.com:team/app.git", "--key", "-"],
    "additional-keys add": ["additional-keys", "add", "web", "--key", "-"],
}


@pytest.mark.parametrize("mistake", MISTAKES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_key_mistake_has_one_code_in_every_command(
    cli: CLI, tmp_path: Path, command: str, mistake: str
) -> None:
    damage, wrong, code = MISTAKES[mistake]
    text = damage(_ssh_keygen(tmp_path / "key", PASSPHRASE))
    extra = ["--passphrase-file", str(_wrong_passphrase(tmp_path))] if wrong else []

    done = cli(*COMMANDS[command], *extra, input=text)

    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: {code}: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    if code == "key_passphrase_required":
        assert "--passphrase-file" in done.stderr
    assert "PRIVATE" not in done.stdout + done.stderr


def test_connect_reports_the_repairs_it_made_as_inspect_does(
    cli: CLI, hosted: HostedRepos, tmp_path: Path
) -> None:
    key = _ssh_keygen(tmp_path / "deploy")
    hosted.host.service.add_access_key(
        WORKSPACE, "app", (tmp_path / "deploy.pub").read_text(), label="repairs"
    )
    pasted = b'"' + b"\r\n".join(b"   " + line for line in key.splitlines()) + b'"'

    inspected = cli("keys", "inspect", "-", input=pasted)
    connected = cli("repo", "connect", "web", hosted.app.url(), "--key", "-", input=pasted)

    assert inspected.returncode == 0, inspected.stderr
    assert connected.returncode == 0, connected.stderr
    shown = re.search(r"^repairs:\s+(.+)$", inspected.stdout, re.MULTILINE)
    assert shown is not None
    assert f"repaired: {shown.group(1)}" in connected.stderr.splitlines()
    assert "converted CRLF line endings" in shown.group(1)
