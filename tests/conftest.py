"""Fixtures every test directory shares: a fresh data directory per test.

The fixtures with real peers (hosts, sshd, platforms) are in :mod:`support.fixtures`.

- ``settings``: ``Settings`` on ``<tmp_path>/data``;
- ``store``: that data directory's store, opened (migrated) and closed after the test;
- ``vault``: its vault (the master key file is created on first use).

Every test, whether it asks for these or not, runs with its own per-user data directory
(``XDG_DATA_HOME`` in a tmp dir) and no ``REPOLINK_DATA_DIR`` from the shell: a test that
builds ``Settings()`` or runs the CLI without naming a data directory never touches the
real home's store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.settings import Settings
from repolink.store import Store
from repolink.vault import Vault, load_vault

pytest_plugins = ["support.postgres", "support.fixtures"]

# The tests' receivers and hosts listen on loopback, which the network policy refuses to
# outbound webhooks by default: every Settings of the tests, and every repolink process they
# start, allows it. A test of the refusal builds a policy or settings without it.
TEST_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"
os.environ.setdefault("REPOLINK_ALLOWED_NETWORKS", TEST_ALLOWED_NETWORKS)


@pytest.fixture(autouse=True)
def _private_default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("REPOLINK_DATA_DIR", raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as opened:
        yield opened


@pytest.fixture
def vault(settings: Settings) -> Vault:
    return load_vault(settings)
