"""The embedded server's host keys: created once, 0600, OpenSSH format, reused — and on a
shared host storage, the same for every process, whichever created them (two processes
starting together: tests/scale/test_shared_host_storage.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repolink.errors import HostStorageError
from repolink.settings import Settings
from repolink.ssh.server_keys import SHARED_KEYS_DIR, ensure_host_keys


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


def test_on_a_shared_storage_the_keys_live_there_and_not_in_the_data_directory(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "shared"
    storage.mkdir()
    one = Settings(data_dir=tmp_path / "one", host_storage=storage)
    other = Settings(data_dir=tmp_path / "other", host_storage=storage)
    first = ensure_host_keys(one)
    assert [key.path.parent for key in first] == [storage / SHARED_KEYS_DIR] * 2
    assert all(key.path.stat().st_mode & 0o777 == 0o600 for key in first)
    assert (storage / SHARED_KEYS_DIR).stat().st_mode & 0o777 == 0o700
    assert ensure_host_keys(other) == first
    assert not (tmp_path / "one" / "host").exists() and not (tmp_path / "other" / "host").exists()


def test_a_shared_storage_without_keys_takes_the_data_directorys_own(tmp_path: Path) -> None:
    """A deployment whose keys were copied into every data directory keeps them when its
    storage becomes a setting: clients see no changed host key."""
    own = ensure_host_keys(Settings(data_dir=tmp_path / "data"))
    storage = tmp_path / "shared"
    storage.mkdir()
    shared = ensure_host_keys(Settings(data_dir=tmp_path / "data", host_storage=storage))
    assert [key.public_line for key in shared] == [key.public_line for key in own]
    assert [key.path.parent for key in shared] == [storage / SHARED_KEYS_DIR] * 2
    assert all(key.path.stat().st_mode & 0o777 == 0o600 for key in shared)


def test_a_missing_shared_storage_is_refused_not_made(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", host_storage=tmp_path / "unmounted")
    with pytest.raises(HostStorageError, match="host storage"):
        ensure_host_keys(settings)
    assert not (tmp_path / "unmounted").exists()

