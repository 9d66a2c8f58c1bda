"""`repolink doctor`: each check proven against real peers (ssh, git, the built-in host, sockets).

Connections are saved without the first fetch, so what the doctor reports is its own finding.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from repolink import cli as cli_root
from repolink import knownhosts
from repolink.hints import command_wording
from repolink.keys import PrivateKey, generate_key
from repolink.platform.connections import create_connection
from repolink.platform.doctor import CHECKS, Check, DoctorReport, check_url
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.platform import KEY_IMPORTED
from repolink.urls import parse_ssh_url
from support.platformkit import HostedRepos, Platform, granted_key
from support.transactions import track_sessions


def _save(platform: Platform, slug: str, url: str, key: PrivateKey) -> None:
    """Project ``slug`` connected to ``url`` with ``key``, without the first fetch."""
    platform.project(slug)
    with platform.store.session() as session:
        create_connection(
            session,
            platform.app.vault(),
            slug,
            parse_ssh_url(url),
            key,
            origin=KEY_IMPORTED,
        )


def _doctor(platform: Platform, slug: str) -> DoctorReport:
    seen: list[Check] = []
    report = platform.app.doctor.check_project(slug, on_check=seen.append)
    assert [check.name for check in report.checks] == list(CHECKS)
    assert list(report.checks) == seen  # every check was reported as it completed
    return report


def _stops_at(report: DoctorReport, name: str, code: str) -> Check:
    """The report failed ``name`` with ``code``: everything before passed, after skipped."""
    index = CHECKS.index(name)
    assert [check.status for check in report.checks] == (
        ["passed"] * index + ["failed"] + ["skipped"] * (len(CHECKS) - index - 1)
    ), [(check.name, check.status, check.detail) for check in report.checks]
    failed = report.checks[index]
    assert report.failure == failed and not report.ok
    assert failed.code == code
    assert failed.hint
    return failed


def _secret_parts(key: PrivateKey) -> list[str]:
    """Pieces only the private key holds: its raw secret (hex, base64 at every alignment) and
    the chunks of its OpenSSH file that the public key line does not contain."""
    secret = key.crypto_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    parts = [secret.hex()[:32]]
    parts += [base64.b64encode(secret[offset:])[4:28].decode() for offset in range(3)]
    body = "".join(
        line for line in key.to_openssh().decode().splitlines() if not line.startswith("-----")
    )
    public = key.public_key.openssh_line()
    chunks = [body[i : i + 24] for i in range(0, len(body) - 24, 24)]
    return parts + [chunk for chunk in chunks if chunk not in public]


def _assert_no_key_material(text: str, key: PrivateKey) -> None:
    assert "PRIVATE KEY" not in text
    assert [part for part in _secret_parts(key) if part in text] == []


# -- the library ------------------------------------------------------------------------------


def test_all_checks_pass_and_the_key_file_is_gone(
    platform: Platform, hosted: HostedRepos, private_tmp: Path
) -> None:
    key = granted_key(hosted.host, "app", "doctor-ok")
    _save(platform, "healthy", hosted.app.url(), key)
    during: list[tuple[str, list[int]]] = []

    def look(check: Check) -> None:
        key_files = [path.stat().st_mode & 0o777 for path in private_tmp.glob("repolink-key-*/id")]
        during.append((check.name, key_files))

    report = platform.app.doctor.check_project("healthy", on_check=look)

    assert report.ok and report.failure is None
    assert [check.status for check in report.checks] == ["passed"] * len(CHECKS)
    details = {check.name: check.detail for check in report.checks}
    port = hosted.host.port
    assert details["url"].startswith(f"ssh://git@127.0.0.1:{port}/team/app")
    assert "127.0.0.1 is an IP address" in details["dns"]
    assert f"127.0.0.1:{port} accepts connections" in details["tcp"]
    assert details["host_key"].startswith("SSH-2.0-")
    assert any(fp in details["host_key"] for fp in hosted.host.server.host_key_fingerprints)
    assert "is trusted (trusted explicitly)" in details["host_key"]
    assert key.public_key.sha256_fingerprint in details["auth"]
    assert "/team/app.git" in details["repository"]
    assert details["refs"] == "2 branches (feature, main), 2 tags (v1.0, v1.1)"
    # The key file existed, 0600, while ssh and git ran — and is gone afterwards.
    assert dict(during)["host_key"] == [0o600]
    assert dict(during)["url"] == []
    assert list(private_tmp.iterdir()) == []
    _assert_no_key_material(json.dumps(report.as_dict()), key)


def test_the_auth_check_is_no_refusal_in_the_hosts_log(
    platform: Platform, hosted: HostedRepos, caplog: pytest.LogCaptureFixture
) -> None:
    # The auth check asks for a session without a command, as `ssh -T` does; the host logged
    # each doctor run as `ssh command refused … shell_refused` (issue 10 §1.17).
    key = granted_key(hosted.host, "app", "doctor-quiet")
    _save(platform, "quiet", hosted.app.url(), key)
    caplog.set_level(logging.INFO, logger="repolink.ssh.server")

    assert platform.app.doctor.check_project("quiet").ok

    host_lines = [r.getMessage() for r in caplog.records if r.name == "repolink.ssh.server"]
    fingerprint = key.public_key.sha256_fingerprint
    assert f"ssh authenticated, shell greeting sent: key {fingerprint}" in host_lines
    assert not [line for line in host_lines if "refused" in line], host_lines


def test_no_transaction_is_open_while_the_checks_run(
    platform: Platform, hosted: HostedRepos, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = granted_key(hosted.host, "app", "doctor-no-tx")
    _save(platform, "no-tx", hosted.app.url(), key)
    open_sessions = track_sessions(platform.store, monkeypatch)
    held: list[int] = []
    report = platform.app.doctor.check_project(
        "no-tx", on_check=lambda _: held.append(len(open_sessions))
    )

    assert report.ok
    assert held == [0] * len(CHECKS)  # DNS, TCP, ssh and git ran with no transaction open


def test_wrong_key_stops_at_authentication_naming_the_offered_key(
    platform: Platform, hosted: HostedRepos, private_tmp: Path
) -> None:
    key = generate_key()
    _save(platform, "stranger", hosted.app.url(), key)

    failed = _stops_at(_doctor(platform, "stranger"), "auth", "auth_failed")

    assert key.public_key.sha256_fingerprint in failed.detail
    assert key.public_key.openssh_line(with_comment=False) in (failed.hint or "")
    assert "read-only access key" in (failed.hint or "")
    assert list(private_tmp.iterdir()) == []


def test_key_of_another_repository_stops_at_repository_access(
    platform: Platform, hosted: HostedRepos
) -> None:
    key = granted_key(hosted.host, "other", "doctor-elsewhere")
    _save(platform, "elsewhere", hosted.app.url(), key)

    report = _doctor(platform, "elsewhere")
    failed = _stops_at(report, "repository", "repo_not_found")

    assert "team/app" in failed.detail
    assert key.public_key.sha256_fingerprint in report.checks[CHECKS.index("auth")].detail


def test_unknown_host_key_stops_at_the_host_key_naming_the_presented_one(
    tmp_path: Path, hosted: HostedRepos
) -> None:
    settings = Settings(data_dir=tmp_path / "untrusting", ssh_connect_timeout=10)
    with Store.open(settings) as store:
        platform = Platform(settings, store, hosted.host)  # trusts nothing
        _save(platform, "unknown-host", hosted.app.url(), granted_key(hosted.host, "app", "uh"))
        failed = _stops_at(_doctor(platform, "unknown-host"), "host_key", "host_key_unknown")

    presented = [fp for fp in hosted.host.server.host_key_fingerprints if fp in failed.detail]
    assert presented
    # The neutral fix names the host; the CLI's words name the command with the fingerprint.
    assert "repolink " not in (failed.hint or "") and "127.0.0.1" in (failed.hint or "")
    assert failed.code is not None
    worded = command_wording(failed.code, failed.reason, failed.context)
    assert worded is not None and f"--fingerprint {presented[0]}" in worded
    with Store.open(settings) as store, store.session() as session:
        assert knownhosts.trusted_keys(session, "127.0.0.1", hosted.host.port) == []  # no TOFU


def test_port_with_nothing_listening_stops_at_tcp(platform: Platform) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening
        _save(platform, "refused", f"ssh://git@127.0.0.1:{port}/a/b.git", generate_key())
        failed = _stops_at(_doctor(platform, "refused"), "tcp", "connection_refused")

    assert f"127.0.0.1:{port}" in failed.detail


def test_unresolvable_host_stops_at_dns(platform: Platform) -> None:
    _save(platform, "nxdomain", "git@no-such-host.invalid:team/app.git", generate_key())

    failed = _stops_at(_doctor(platform, "nxdomain"), "dns", "dns_failed")

    assert "no-such-host.invalid" in failed.detail


def test_a_server_that_is_not_ssh_stops_at_the_banner(platform: Platform) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        _save(platform, "http", f"ssh://git@127.0.0.1:{port}/a/b.git", generate_key())

        def answer_like_http() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        server = threading.Thread(target=answer_like_http, daemon=True)
        server.start()
        failed = _stops_at(_doctor(platform, "http"), "host_key", "not_ssh_server")
        server.join(10)

    assert "HTTP/1.1 400 Bad Request" in failed.detail


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("https://bitbucket.org/team/app.git", "git@bitbucket.org:team/app.git"),
        ("git@github.com:team/app.git", None),
        ("ssh://git@git.example.com:2222/team/app.git", None),
    ],
)
def test_url_check_names_the_mistake_and_its_fix(url: str, fix: str | None) -> None:
    check = check_url(url)

    if fix is None:
        assert check.ok and check.code is None
        assert parse_ssh_url(url).canonical in check.detail
    else:
        assert check.status == "failed" and check.code == "invalid_url"
        assert fix in (check.hint or "")


def test_url_without_user_passes_with_a_warning() -> None:
    check = check_url("ssh://git.example.com/team/app.git")
    assert check.ok
    assert "expect git@" in check.detail


# -- the command line -------------------------------------------------------------------------


def _repolink(
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
) -> subprocess.CompletedProcess[str]:
    """``repolink ARGS`` through its real entry point, in this process, on the platform."""
    with monkeypatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("REPOLINK_")]:
            patch.delenv(name)
        patch.setenv("REPOLINK_DATA_DIR", str(platform.settings.data_dir))
        patch.setenv("REPOLINK_SSH_CONNECT_TIMEOUT", "10")
        patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli_root.main(list(args))
        out, err = capsys.readouterr()
    code = exited.value.code
    return subprocess.CompletedProcess(args, code if isinstance(code, int) else 1, out, err)


def test_cli_prints_the_checklist_and_exits_0_when_all_pass(
    platform: Platform,
    hosted: HostedRepos,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = granted_key(hosted.host, "app", "doctor-cli-ok")
    _save(platform, "cli-ok", hosted.app.url(), key)

    done = _repolink(platform, monkeypatch, capsys, "doctor", "cli-ok")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("✓ ") for line in lines) == len(CHECKS)
    assert "✗" not in done.stdout
    assert "all checks passed" in lines[-1]
    _assert_no_key_material(done.stdout + done.stderr, key)


def test_cli_stops_at_the_failure_prints_its_fix_and_exits_1(
    platform: Platform,
    hosted: HostedRepos,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    private_tmp: Path,
) -> None:
    key = generate_key()
    _save(platform, "cli-bad", hosted.app.url(), key)

    done = _repolink(platform, monkeypatch, capsys, "doctor", "cli-bad")

    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line[0] for line in lines[1:8]] == ["✓"] * 4 + ["✗"] + ["–"] * 2
    assert "auth_failed" in lines[5] and key.public_key.sha256_fingerprint in lines[5]
    assert lines[-1].startswith("fix (authentication): add this public key")
    assert key.public_key.openssh_line(with_comment=False) in lines[-1]
    _assert_no_key_material(done.stdout + done.stderr, key)
    assert list(private_tmp.iterdir()) == []

    as_json = _repolink(platform, monkeypatch, capsys, "doctor", "cli-bad", "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["project"] == "cli-bad"
    assert [check["status"] for check in report["checks"]][3:6] == ["passed", "failed", "skipped"]
    assert report["checks"][4]["code"] == "auth_failed"
    _assert_no_key_material(as_json.stdout, key)


def test_cli_unknown_project_is_bad_input(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _repolink(platform, monkeypatch, capsys, "doctor", "no-such-project")

    assert done.returncode == 2
    assert done.stdout == ""
    assert "project_not_found" in done.stderr
