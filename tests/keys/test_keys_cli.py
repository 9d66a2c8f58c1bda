"""``repolink keys generate`` and ``repolink keys inspect``: in-process and as a real process."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from repolink.cli.keys import app
from repolink.errors import Conflict, KeyFormatError, ValidationError
from repolink.hints import command_hint
from repolink.keys import generate_key, parse_private_key

JSON_KEYS = {"kind", "type", "bits", "sha256", "md5", "comment", "public_key", "repairs"}


def _assert_one_line_error(result: subprocess.CompletedProcess[str], code: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {code}: ")
    assert " — " in lines[0]  # the hint
    return lines[0]


def _secret_lines(text: str, public_line: str = "") -> list[str]:
    """Lines of a private key file that hold private data (an OpenSSH file also carries the
    public key, which may rightly be shown)."""
    lines = [line for line in text.splitlines()[1:-1] if line and ":" not in line]
    return [line for line in lines if line not in public_line]


# --- in-process -----------------------------------------------------------------------------


def test_generate_writes_the_pair_with_the_right_modes(tmp_path: Path, ssh_keygen: Any) -> None:
    out = tmp_path / "deploy_key"
    result = CliRunner().invoke(
        app,
        ["generate", "--type", "ecdsa", "--bits", "384", "--comment", "ci@x", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    public = Path(f"{out}.pub")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    key = parse_private_key(out.read_bytes()).key
    assert out.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    # The comment is in both files, as ssh-keygen writes them (issue 10 §1.12).
    assert key.comment == "ci@x"
    assert public.read_text() == key.public_key.openssh_line() + "\n"
    assert key.key_type == "ecdsa-sha2-nistp384"
    assert public.read_text().strip() in result.output
    assert key.public_key.sha256_fingerprint in result.output
    assert key.public_key.md5_fingerprint in result.output
    for line in _secret_lines(out.read_text(), key.public_key.openssh_line()):
        assert line not in result.output
    derived = ssh_keygen("-y", "-f", str(out)).stdout.strip()
    assert derived == key.public_key.openssh_line() == public.read_text().strip()


def test_generate_pem(tmp_path: Path) -> None:
    out = tmp_path / "rsa_key"
    result = CliRunner().invoke(
        app, ["generate", "--type", "rsa", "--format", "pem", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert parse_private_key(out.read_text()).key.bits == 3072


def test_generate_ed25519_pem_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "key"
    result = CliRunner().invoke(app, ["generate", "--format", "pem", "--out", str(out)])
    assert isinstance(result.exception, KeyFormatError)
    assert result.exception.code == "key_pem_unsupported"
    assert list(tmp_path.iterdir()) == []


def test_generate_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "key"
    out.write_text("precious")
    result = CliRunner().invoke(app, ["generate", "--out", str(out)])
    assert isinstance(result.exception, Conflict)
    assert result.exception.code == "key_file_exists"
    assert out.read_text() == "precious"
    assert not Path(f"{out}.pub").exists()
    # An existing .pub blocks too, before the private file is written.
    other = tmp_path / "other"
    Path(f"{other}.pub").write_text("precious")
    result = CliRunner().invoke(app, ["generate", "--out", str(other)])
    assert isinstance(result.exception, Conflict)
    assert not other.exists()


def test_generate_refuses_a_symlink_in_the_way(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "key").symlink_to(target)
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "key")])
    assert isinstance(result.exception, Conflict)
    assert not target.exists()


@pytest.mark.parametrize(
    ("args", "error_type", "code"),
    [
        (["generate"], ValidationError, "key_out_required"),
        (["generate", "--type", "dsa", "--out", "k"], KeyFormatError, "key_unsupported_type"),
        (
            ["generate", "--bits", "1024", "--type", "rsa", "--out", "k"],
            ValidationError,
            "key_bits_invalid",
        ),
        (["generate", "--format", "der", "--out", "k"], ValidationError, "key_format_unknown"),
        (["generate", "--out", "no/such/dir/k"], ValidationError, "key_file_unwritable"),
        (["inspect", "no-such-file"], ValidationError, "key_file_not_found"),
    ],
)
def test_bad_arguments_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], error_type: type, code: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, error_type)
    assert getattr(result.exception, "code", None) == code
    assert not (tmp_path / "k").exists()


def test_inspect_private_key_shows_facts_never_the_key(tmp_path: Path) -> None:
    key = generate_key("ed25519", comment="")
    path = tmp_path / "key"
    path.write_bytes(key.to_openssh())
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "private" in result.output
    assert key.public_key.sha256_fingerprint in result.output
    assert key.public_key.md5_fingerprint in result.output
    assert key.public_key.openssh_line() in result.output
    assert "repairs:" in result.output and "none" in result.output
    for line in _secret_lines(path.read_text(), key.public_key.openssh_line()):
        assert line not in result.output


def test_inspect_json_reports_repairs(tmp_path: Path) -> None:
    crypto_key = ec.generate_private_key(ec.SECP256R1())
    pem = crypto_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    path = tmp_path / "key.pem"
    path.write_bytes(b"   " + pem.replace(b"\n", b"\r\n"))
    result = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == JSON_KEYS
    assert report["kind"] == "private"
    assert report["type"] == "ecdsa-sha2-nistp256"
    assert report["bits"] == 256
    assert "converted CRLF line endings" in report["repairs"]
    assert "removed leading/trailing whitespace" in report["repairs"]
    assert report["sha256"] == parse_private_key(pem).key.public_key.sha256_fingerprint


def test_inspect_public_key_from_stdin() -> None:
    key = generate_key(comment="from stdin")
    line = key.public_key.openssh_line()
    result = CliRunner().invoke(app, ["inspect", "-", "--json"], input=f'"{line}"\n')
    report = json.loads(result.output)
    assert report["kind"] == "public"
    assert report["comment"] == "from stdin"
    assert report["public_key"] == line
    assert report["repairs"] == ["removed surrounding quotes"]


def test_inspect_with_passphrase_file(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "key"
    path.write_bytes(key.to_openssh(b"s3cret words"))
    secret = tmp_path / "pass"
    secret.write_text("s3cret words\n")
    result = CliRunner().invoke(
        app, ["inspect", str(path), "--passphrase-file", str(secret), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sha256"] == key.public_key.sha256_fingerprint
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert isinstance(result.exception, KeyFormatError)
    assert result.exception.code == "key_passphrase_required"
    # The fix as the CLI prints it (repolink.hints) names the option; the error's own is neutral.
    assert "--passphrase-file" in command_hint(result.exception)


# --- as a real process ----------------------------------------------------------------------


def test_process_generate_then_refuse_overwrite(
    run_repolink: Any, tmp_path: Path, ssh_keygen: Any
) -> None:
    out = tmp_path / "id_deploy"
    first = run_repolink("keys", "generate", "--type", "rsa", "--bits", "2048", "--out", str(out))
    assert first.returncode == 0, first.stderr
    pub_line = Path(f"{out}.pub").read_text().strip()
    assert pub_line in first.stdout
    assert ssh_keygen("-y", "-f", str(out)).stdout.strip() == pub_line
    for line in _secret_lines(out.read_text(), pub_line):
        assert line not in first.stdout + first.stderr

    second = run_repolink("keys", "generate", "--out", str(out))
    _assert_one_line_error(second, "key_file_exists")


@pytest.mark.parametrize(
    ("stdin", "code"),
    [
        ("hello world\n", "key_not_a_key"),
        ("", "key_empty"),
        ("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n", "key_putty_format"),
    ],
)
def test_process_bad_input_is_one_line_and_exit_2(run_repolink: Any, stdin: str, code: str) -> None:
    _assert_one_line_error(run_repolink("keys", "inspect", "-", stdin=stdin), code)


def test_process_private_key_errors_do_not_echo_it(run_repolink: Any) -> None:
    text = generate_key().to_openssh().decode()
    truncated = "\n".join(text.splitlines()[:3])
    result = run_repolink("keys", "inspect", "-", stdin=truncated)
    line = _assert_one_line_error(result, "key_missing_footer")
    for body_line in _secret_lines(text):
        assert body_line not in line + result.stdout


def test_process_inspect_json(run_repolink: Any, tmp_path: Path) -> None:
    key = generate_key("ecdsa", 521, "json@test")
    path = tmp_path / "key"
    path.write_bytes(key.to_pem())
    result = run_repolink("keys", "inspect", str(path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == JSON_KEYS
    assert report["bits"] == 521
    assert report["md5"] == key.public_key.md5_fingerprint
    assert "PRIVATE" not in result.stdout


def test_inspecting_a_directory_names_no_option_inspect_lacks(
    run_repolink: Any, tmp_path: Path
) -> None:
    # `keys inspect` takes the key as an argument: its fix must not point at a --key option.
    result = run_repolink("keys", "inspect", str(tmp_path))
    line = _assert_one_line_error(result, "key_file_unreadable")
    assert "--key" not in line
    assert "check the path of the key file" in line
