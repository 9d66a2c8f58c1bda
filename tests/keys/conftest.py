"""Fixtures for the key tests: the real ssh-keygen, run with an isolated HOME, and its keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PASSPHRASE = "correct horse"
KINDS = [
    ("ed25519", 256),
    ("rsa", 2048),
    ("rsa", 3072),
    ("rsa", 4096),
    ("ecdsa", 256),
    ("ecdsa", 384),
    ("ecdsa", 521),
]
SshKeygen = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for subprocesses: a throw-away HOME, no agent, nothing from ~/.ssh."""
    home = tmp_path_factory.mktemp("home")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SSH_")}
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="session")
def ssh_keygen(isolated_env: dict[str, str]) -> SshKeygen:
    """Run the real ssh-keygen; fails the test on a non-zero exit unless check=False."""
    binary = shutil.which("ssh-keygen")
    if binary is None:
        pytest.skip("ssh-keygen is not installed; the key cross-checks need the real one")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [binary, *args],
            env=isolated_env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"ssh-keygen {' '.join(args)} failed: {result.stderr}")
        return result

    return run


@dataclass(frozen=True)
class KeygenKey:
    """A key pair written by ssh-keygen: private file (in some format) and its .pub."""

    private: Path
    public: Path
    kind: str
    bits: int
    comment: str

    def fingerprint(self, ssh_keygen: SshKeygen, hash_name: str) -> tuple[int, str]:
        fields = ssh_keygen("-l", "-E", hash_name, "-f", str(self.public)).stdout.split()
        return int(fields[0]), fields[1]


class KeygenKeys:
    """Keys made by ssh-keygen once per session; other formats are ssh-keygen conversions."""

    def __init__(self, root: Path, run: SshKeygen) -> None:
        self._root = root
        self._run = run
        self._cache: dict[tuple[str, int, str, str | None], KeygenKey] = {}

    def get(
        self, kind: str, bits: int, key_format: str = "openssh", passphrase: str | None = None
    ) -> KeygenKey:
        wanted = (kind, bits, key_format, passphrase)
        if wanted not in self._cache:
            self._cache[wanted] = self._make(kind, bits, key_format, passphrase)
        return self._cache[wanted]

    def _make(self, kind: str, bits: int, key_format: str, passphrase: str | None) -> KeygenKey:
        if (key_format, passphrase) == ("openssh", None):
            path = self._root / f"{kind}{bits}"
            comment = f"{kind}-{bits}@repolink-test"
            self._run("-q", "-t", kind, "-b", str(bits), "-N", "", "-C", comment, "-f", str(path))
            return KeygenKey(path, path.with_name(path.name + ".pub"), kind, bits, comment)
        original = self.get(kind, bits)
        path = self._root / f"{kind}{bits}-{key_format}-{'enc' if passphrase else 'plain'}"
        shutil.copyfile(original.private, path)
        path.chmod(0o600)
        args = ["-q", "-p", "-P", "", "-N", passphrase or "", "-f", str(path)]
        if key_format != "openssh":
            args += ["-m", key_format]
        self._run(*args)
        return KeygenKey(path, original.public, kind, bits, original.comment)


@pytest.fixture(scope="session")
def keygen_keys(tmp_path_factory: pytest.TempPathFactory, ssh_keygen: SshKeygen) -> KeygenKeys:
    return KeygenKeys(tmp_path_factory.mktemp("keygen"), ssh_keygen)


def body_lines(key_text: str | bytes) -> list[str]:
    """The base64 lines of a key file (what must never show up anywhere)."""
    text = key_text.decode() if isinstance(key_text, bytes) else key_text
    return [
        line
        for line in text.splitlines()
        if line and not line.startswith("-----") and ":" not in line and len(line) >= 16
    ]


@pytest.fixture(scope="session")
def secret_lines() -> Callable[[str | bytes], list[str]]:
    return body_lines


def _repolink_command() -> list[str]:
    script = Path(sys.executable).with_name("repolink")
    return [str(script)] if script.exists() else [sys.executable, "-m", "repolink"]


@pytest.fixture
def run_repolink(isolated_env: dict[str, str], tmp_path: Path) -> Any:
    """Run the installed ``repolink`` as a separate process."""
    env = {**isolated_env, "REPOLINK_DATA_DIR": str(tmp_path / "data")}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_repolink_command(), *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    return run
