"""``keys generate`` writes private keys as ssh-keygen does (issue 10 §1.12): the comment inside
the private file, and with ``--passphrase-file`` encrypted (bcrypt KDF, aes256-ctr) — checked
by the real ``ssh-keygen -y`` and ``-l`` reading the private file alone (no .pub beside it)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from repolink.keys import generate_key, parse_private_key

PASSPHRASE = "correct horse battery"
GENERATED = [("ed25519", None), ("rsa", "2048"), ("ecdsa", "256"), ("ecdsa", "521")]


def _alone(out: Path) -> Path:
    """The private file moved away from its .pub, so ssh-keygen can read only the private one."""
    alone = out.parent / "alone" / out.name
    alone.parent.mkdir()
    out.rename(alone)
    return alone


@pytest.mark.parametrize(("kind", "bits"), GENERATED)
def test_the_comment_is_inside_the_private_file(
    run_repolink: Any, ssh_keygen: Any, tmp_path: Path, kind: str, bits: str | None
) -> None:
    out = tmp_path / "deploy"
    size = ["--bits", bits] if bits else []
    done = run_repolink(
        "keys", "generate", "--type", kind, *size, "--comment", "ci@build 1", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    public_line = Path(f"{out}.pub").read_text().strip()
    assert public_line.endswith(" ci@build 1")

    private = _alone(out)
    assert ssh_keygen("-y", "-f", str(private)).stdout.strip() == public_line
    listed = ssh_keygen("-l", "-f", str(private)).stdout
    assert " ci@build 1 (" in listed
    assert parse_private_key(private.read_bytes()).key.comment == "ci@build 1"


@pytest.mark.parametrize(("kind", "bits"), GENERATED)
def test_a_passphrase_file_protects_the_key_as_ssh_keygen_does(
    run_repolink: Any, ssh_keygen: Any, tmp_path: Path, kind: str, bits: str | None
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    out = tmp_path / "deploy"
    size = ["--bits", bits] if bits else []

    done = run_repolink(
        "keys",
        "generate",
        "--type",
        kind,
        *size,
        "--comment",
        "locked@ci",
        "--passphrase-file",
        str(secret),
        "--out",
        str(out),
    )

    assert done.returncode == 0, done.stderr
    assert "passphrase-protected" in done.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert PASSPHRASE not in done.stdout + done.stderr
    public_line = Path(f"{out}.pub").read_text().strip()
    private = _alone(out)
    # ssh-keygen asks for the passphrase: the right one opens the key (comment included) …
    opened = ssh_keygen("-y", "-P", PASSPHRASE, "-f", str(private))
    assert opened.stdout.strip() == public_line
    # … a wrong or missing one does not.
    for wrong in ("wrong", ""):
        refused = ssh_keygen("-y", "-P", wrong, "-f", str(private), check=False)
        assert refused.returncode != 0
        assert "incorrect passphrase" in refused.stderr
    assert "aes256-ctr" in _cipher_of(private)
    # repolink reads it back the same way.
    checked = run_repolink("keys", "inspect", str(private), "--passphrase-file", str(secret))
    assert checked.returncode == 0, checked.stderr
    assert "locked@ci" in checked.stdout
    locked = run_repolink("keys", "inspect", str(private))
    assert locked.stderr.startswith("error: key_passphrase_required: ")


def test_a_pem_key_is_protected_too(run_repolink: Any, ssh_keygen: Any, tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE)
    out = tmp_path / "deploy.pem"
    done = run_repolink(
        "keys",
        "generate",
        "--type",
        "rsa",
        "--bits",
        "2048",
        "--format",
        "pem",
        "--passphrase-file",
        str(secret),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "ENCRYPTED" in out.read_text()
    public = Path(f"{out}.pub").read_text().split()[:2]
    opened = ssh_keygen("-y", "-P", PASSPHRASE, "-f", str(_alone(out))).stdout.split()[:2]
    assert opened == public


@pytest.mark.parametrize("content", ["", "\n"])
def test_an_empty_passphrase_file_is_refused_before_any_file_is_written(
    run_repolink: Any, tmp_path: Path, content: str
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(content)
    out = tmp_path / "deploy"

    done = run_repolink("keys", "generate", "--passphrase-file", str(secret), "--out", str(out))

    assert done.returncode == 2
    assert done.stderr.startswith("error: key_passphrase_empty: "), done.stderr
    assert "--passphrase-file" in done.stderr
    assert not os.path.lexists(out) and not os.path.lexists(f"{out}.pub")


def test_every_writer_keeps_the_comment_and_the_passphrase() -> None:
    # The platform stores keys with to_openssh: the comment survives the round trip too.
    for kind in ("ed25519", "rsa", "ecdsa"):
        key = generate_key(kind, 2048 if kind == "rsa" else None, comment="stored@platform")
        assert parse_private_key(key.to_openssh()).key.comment == "stored@platform"
        protected = key.to_openssh(b"pass phrase")
        again = parse_private_key(protected, b"pass phrase").key
        assert again == key and again.comment == "stored@platform"


def _cipher_of(private: Path) -> str:
    body = "".join(private.read_text().strip().splitlines()[1:-1])
    return base64.b64decode(body)[:64].decode("latin-1")
