"""Key files on disk for one run, and key material kept out of what a run prints."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from repolink.git import keyfiles
from repolink.git.keyfiles import private_key_file, scrub
from repolink.git.runner import HardenedRunner

RUNNER = HardenedRunner()
run = RUNNER.run


# -- private_key_file -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openssh_key(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("keys") / "id"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
    )
    return path.read_bytes()


def test_private_key_file_is_0600_in_a_0700_directory(openssh_key: bytes) -> None:
    with private_key_file(openssh_key) as key_path:
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
        assert key_path.read_bytes() == openssh_key
        assert os.listdir(key_path.parent) == [key_path.name]
    assert not key_path.exists()
    assert not key_path.parent.exists()


def test_private_key_file_is_usable_by_ssh_keygen(openssh_key: bytes, env: dict[str, str]) -> None:
    with private_key_file(openssh_key.rstrip(b"\n")) as key_path:
        assert key_path.read_bytes() == openssh_key  # a trailing newline OpenSSH insists on
        result = run(["ssh-keygen", "-y", "-f", str(key_path)], env=env, timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"ssh-ed25519 ")


def test_private_key_file_is_removed_after_an_exception(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), private_key_file(b"secret", base_dir=tmp_path) as key_path:
        (key_path.parent / "known_hosts").write_text("host ssh-ed25519 AAAA\n")
        raise RuntimeError("fetch failed")
    assert key_path.parent.parent == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_private_key_file_is_wiped_before_removal(tmp_path: Path) -> None:
    with private_key_file(b"secret material", base_dir=tmp_path) as key_path:
        keep = tmp_path / "hardlink"
        os.link(key_path, keep)  # sees the same inode after the key file is unlinked
    assert keep.read_bytes() == bytes(len(b"secret material\n"))


# -- scrub ------------------------------------------------------------------------------------


def test_scrub_replaces_temp_paths(tmp_path: Path) -> None:
    secret_dir = tmp_path / "repolink-key-x1"
    text = (
        f'Load key "{secret_dir}/id": invalid format\n'
        f"ControlPath {secret_dir}/cm too long\n"
        "fatal: Could not read from remote repository.\n"
    )
    cleaned = scrub(text, secrets_paths=[secret_dir])
    assert str(secret_dir) not in cleaned
    assert str(tmp_path) in text and cleaned.count("<tmp>") == 2
    assert cleaned.endswith("fatal: Could not read from remote repository.\n")


def test_scrub_removes_lines_that_look_like_key_material() -> None:
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
    text = (
        "remote: Counting objects: 3\n"
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        f"{body}\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
        "PuTTY-User-Key-File-3: ssh-ed25519\n"
        f"error: weird {body}Zz\n"
        "From ssh://host/repo\n"
        " * [new branch]      main       -> origin/main\n"
        f"fatal: bad object {'ab12' * 16}\n"
    )
    cleaned = scrub(text, secrets_paths=[])
    assert "PRIVATE KEY" not in cleaned
    assert body not in cleaned
    assert "PuTTY" not in cleaned
    assert cleaned.splitlines() == [
        "remote: Counting objects: 3",
        "From ssh://host/repo",
        " * [new branch]      main       -> origin/main",
        f"fatal: bad object {'ab12' * 16}",  # a sha256 object id is not key material
    ]


def test_key_directory_of_a_dead_process_is_wiped_by_the_next_run(tmp_path: Path) -> None:
    # A run killed with SIGKILL cannot clean up; the next run removes what it left.
    child = subprocess.Popen(["true"])
    child.wait()
    stale = tmp_path / f"{keyfiles.KEY_DIR_PREFIX}{child.pid}-abc123"
    stale.mkdir(mode=0o700)
    (stale / "id").write_bytes(b"not really a key\n")
    alive = tmp_path / f"{keyfiles.KEY_DIR_PREFIX}{os.getpid()}-def456"
    alive.mkdir(mode=0o700)

    with keyfiles.private_key_file(b"key\n", base_dir=tmp_path) as key_path:
        assert key_path.parent.name.startswith(f"{keyfiles.KEY_DIR_PREFIX}{os.getpid()}-")
        assert not stale.exists()
        assert alive.exists()  # a live process's directory is never touched
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]
