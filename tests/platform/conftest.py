"""Fixtures of the platform tests: the built-in host as the peer, a platform per test.

- ``hosted`` (one per module): the embedded SSH host on 127.0.0.1 with ``team/app`` and
  ``team/other`` populated by real pushes.
- ``platform``: a fresh platform data directory that trusts that host's keys.
- ``private_tmp``: the system temp directory (key files, short control sockets), redirected
  to a fresh one under /tmp that the test can inspect.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.settings import Settings
from repolink.store import Store
from support.hostkit import LoopThread, start_embedded_host
from support.platformkit import HostedRepos, Platform, populate


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedRepos]:
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path_factory.mktemp("host"), loop)
    try:
        yield populate(host)
    finally:
        stop()
        loop.stop()


@pytest.fixture
def platform(tmp_path: Path, hosted: HostedRepos) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path / "platform", git_timeout=120, ssh_connect_timeout=10)
    with Store.open(settings) as store:
        kit = Platform(settings, store, hosted.host)
        kit.trust_host()
        yield kit


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rl-platform-", dir="/tmp") as directory:
        monkeypatch.setattr(tempfile, "tempdir", directory)
        yield Path(directory)
