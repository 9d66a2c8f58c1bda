"""scan(): the real ssh-keyscan against a real SSH server on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from repolink.errors import GitError, ValidationError
from repolink.git.keyscan import scan
from repolink.git.runner import HardenedRunner
from support.knownhosts_support import LoopbackSSHServer, host_key

RUNNER = HardenedRunner()


def test_scan_reports_every_host_key_with_its_fingerprint(
    ssh_server: LoopbackSSHServer, tmp_path: Path
) -> None:
    ssh_server.restart(
        [host_key("ssh-ed25519"), host_key("ecdsa-sha2-nistp384"), host_key("ssh-rsa")]
    )
    keys = scan("127.0.0.1", ssh_server.port, connect_timeout=5, runner=RUNNER)

    assert sorted(key.fingerprint for key in keys) == sorted(ssh_server.fingerprints())
    assert {key.key_type for key in keys} == {"ssh-ed25519", "ecdsa-sha2-nistp384", "ssh-rsa"}
    assert all((key.host, key.port) == ("127.0.0.1", ssh_server.port) for key in keys)
    # ssh-keygen agrees with the fingerprints repolink computed from the key lines.
    lines = tmp_path / "keys"
    lines.write_text("".join(f"127.0.0.1 {key.public_line}\n" for key in keys))
    listing = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(lines)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(line.split()[1] for line in listing.splitlines()) == sorted(
        key.fingerprint for key in keys
    )


def test_scan_of_a_closed_port_is_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(GitError) as caught:
            scan("127.0.0.1", port, connect_timeout=5, runner=RUNNER)
    assert caught.value.code == "connection_refused"
    assert f"127.0.0.1:{port}" in caught.value.message


def test_scan_of_an_unresolvable_name_is_dns_failed() -> None:
    with pytest.raises(GitError) as caught:
        scan("no-such-host.invalid", 22, connect_timeout=5, runner=RUNNER)
    assert caught.value.code == "dns_failed"
    assert "no-such-host.invalid" in caught.value.message


def test_scan_of_something_that_is_not_ssh_is_named() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        # Accepts (the kernel does) and never speaks SSH: keyscan gives up after -T seconds.
        with pytest.raises(GitError) as caught:
            scan("127.0.0.1", port, connect_timeout=1, runner=RUNNER)
    assert caught.value.code == "host_key_scan_failed"


@pytest.mark.parametrize(("host", "port"), [("-oProxyCommand=x", 22), ("ok.example", 0)])
def test_scan_refuses_bad_input_before_running_anything(host: str, port: int) -> None:
    with pytest.raises(ValidationError):
        scan(host, port, runner=RUNNER)
