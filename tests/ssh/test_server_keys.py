"""The embedded server's host keys: created once, 0600, OpenSSH format, reused."""

from __future__ import annotations

import subprocess

from repolink.settings import Settings
from repolink.ssh.server_keys import ensure_host_keys


def test_host_keys_are_created_once_and_reused(host_settings: Settings) -> None:
    first = ensure_host_keys(host_settings)
    assert [key.key_type for key in first] == ["ssh-ed25519", "ssh-rsa"]
    assert [key.path.name for key in first] == ["ssh_host_ed25519_key", "ssh_host_rsa_key"]
    contents = [key.path.read_bytes() for key in first]
    second = ensure_host_keys(host_settings)
    assert second == first
    assert [key.path.read_bytes() for key in second] == contents


def test_host_key_files_are_private_openssh_keys(host_settings: Settings) -> None:
    for key in ensure_host_keys(host_settings):
        assert key.path.stat().st_mode & 0o777 == 0o600
        assert key.path.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
        # ssh-keygen reads the file and agrees on the fingerprint and the public line.
        listed = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(key.path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert listed[1] == key.fingerprint_sha256
        public = subprocess.run(
            ["ssh-keygen", "-y", "-f", str(key.path)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert " ".join(public[:2]) == key.public_line
    rsa = ensure_host_keys(host_settings)[1]
    bits = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(rsa.path)], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert bits == "3072"


def test_known_hosts_lines(host_settings: Settings) -> None:
    key = ensure_host_keys(host_settings)[0]
    assert key.known_hosts_line("git.example.com") == f"git.example.com {key.public_line}"
    assert key.known_hosts_line("127.0.0.1", 2222) == f"[127.0.0.1]:2222 {key.public_line}"
