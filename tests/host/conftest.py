"""Fixtures of the built-in host's tests (helpers live in ``hostkit``).

- ``host_settings`` / ``host_store`` / ``host_service``: a fresh data directory per test.
- ``make_key``: key pairs made by ``ssh-keygen`` at test time.
- ``embedded_host``: the embedded SSH server, one per test module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from repolink.host.service import HostService
from repolink.settings import Settings
from repolink.store import Store
from support.hostkit import (
    EmbeddedHost,
    KeyPair,
    LoopThread,
    generate_key_pair,
    start_embedded_host,
)


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[[str], KeyPair]:
    return lambda name: generate_key_pair(tmp_path / "keys", name)


# -- service on a fresh data directory --------------------------------------------------------


@pytest.fixture
def host_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def host_store(host_settings: Settings) -> Iterator[Store]:
    with Store.open(host_settings) as store:
        yield store


@pytest.fixture
def host_service(host_settings: Settings, host_store: Store) -> HostService:
    return HostService(host_settings, host_store)


@pytest.fixture(scope="module")
def embedded_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHost]:
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path_factory.mktemp("embedded-host"), loop)
    try:
        yield host
    finally:
        stop()
        loop.stop()
