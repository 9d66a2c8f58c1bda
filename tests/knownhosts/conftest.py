"""Fixtures for the host key tests (the helpers live in hostkeys_support)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.knownhosts_support import LoopbackSSHServer, SSHClient, host_key


@pytest.fixture
def ssh_server() -> Iterator[LoopbackSSHServer]:
    server = LoopbackSSHServer()
    server.start([host_key()])
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A 0700 directory whose path ssh options accept (pytest's tmp_path may hold '[').

    It stands for the fetch's per-run directory: the client key and the known_hosts file.
    """
    directory = Path(tempfile.mkdtemp(prefix="repolink-hostkeys-test-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def ssh_client(run_dir: Path) -> SSHClient:
    return SSHClient(run_dir)
