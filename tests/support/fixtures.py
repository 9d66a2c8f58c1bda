"""Fixtures with real peers, shared by every test directory (registered in tests/conftest.py).

- ``make_key``: key pairs made by ``ssh-keygen`` at test time.
- ``host_settings`` / ``host_store`` / ``host_service``: the built-in host on a fresh data
  directory per test.
- ``embedded_host``: the embedded SSH server, one per test module.
- ``hosted`` (one per module): the embedded SSH host on 127.0.0.1 with ``team/app`` and
  ``team/other`` populated by real pushes — the platform's peer.
- ``host_api``: the built-in host's HTTP API (``…/host/api/2.0``) over ``hosted``'s store on a
  real uvicorn server, with the admin token ``HOST_API_TOKEN``.
- ``platform``: a fresh platform data directory that trusts that host's keys, starting its
  processes through ``recording`` (a :class:`support.recording.RecordingRunner` around the real
  runner): a test that asks for both sees every process the platform started.
- ``pg_platform``: ``platform`` on a fresh PostgreSQL database (its jobs on procrastinate),
  for the tests of what only PostgreSQL does; skipped without PostgreSQL.
- ``proxy``: a :class:`support.platformkit.CountingProxy` in front of ``hosted`` (a slow or
  unreachable peer when the test says so).
- ``trusting_cli``: ``repolink`` in process on a fresh data directory that trusts that host;
  ``fresh_cli``: the same without any peer.
- ``private_tmp``: the system temp directory (key files, short control sockets), redirected
  to a fresh one under /tmp that the test can inspect.
- ``ssh_server`` / ``run_dir`` / ``ssh_client``: a loopback asyncssh server with one host key,
  and a real ssh client with a per-run directory, for the host-key tests.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.git.runner import HardenedRunner
from repolink.host.service import HostService
from repolink.http.host_api import create_host_api
from repolink.settings import Settings
from repolink.store import Store
from support.clikit import CLI
from support.hostkit import (
    EmbeddedHost,
    KeyPair,
    LoopThread,
    generate_key_pair,
    start_embedded_host,
)
from support.httpkit import serving_app
from support.knownhosts_support import LoopbackSSHServer, SSHClient, host_key
from support.platformkit import CountingProxy, HostedRepos, Platform, populate
from support.recording import RecordingRunner


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[[str], KeyPair]:
    return lambda name: generate_key_pair(tmp_path / "keys", name)


@pytest.fixture
def host_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def host_store(host_settings: Settings) -> Iterator[Store]:
    with Store.open(host_settings) as store:
        yield store


@pytest.fixture
def host_service(host_settings: Settings, host_store: Store) -> HostService:
    return HostService(host_settings, host_store, runner=HardenedRunner())


@pytest.fixture(scope="module")
def embedded_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHost]:
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path_factory.mktemp("embedded-host"), loop)
    try:
        yield host
    finally:
        stop()
        loop.stop()


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedRepos]:
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path_factory.mktemp("host"), loop)
    try:
        yield populate(host)
    finally:
        stop()
        loop.stop()


HOST_API_TOKEN = "host-api-test-admin-token"


@pytest.fixture
def host_api(hosted: HostedRepos) -> Iterator[str]:
    """The built-in host's HTTP API on a real uvicorn server, sharing the host's store."""
    settings = Settings(data_dir=hosted.host.settings.data_dir, admin_token=HOST_API_TOKEN)
    app = create_host_api(Repolink(settings, store=hosted.host.store))
    with serving_app(app) as base:
        yield f"{base}/host/api/2.0"


@pytest.fixture
def recording() -> RecordingRunner:
    return RecordingRunner()


@pytest.fixture
def fresh_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CLI:
    (tmp_path / "home").mkdir()
    return CLI(tmp_path / "data", tmp_path / "home", capsys, monkeypatch)


@pytest.fixture
def trusting_cli(
    tmp_path: Path,
    hosted: HostedRepos,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> CLI:
    settings = Settings(data_dir=tmp_path / "data")
    with Store.open(settings) as store:
        Platform(settings, store, hosted.host).trust_host()
    (tmp_path / "home").mkdir()
    return CLI(settings.data_dir, tmp_path / "home", capsys, monkeypatch)


@pytest.fixture
def platform(tmp_path: Path, hosted: HostedRepos, recording: RecordingRunner) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path / "platform", git_timeout=120, ssh_connect_timeout=10)
    with Store.open(settings) as store:
        kit = Platform(settings, store, hosted.host, runner=recording)
        kit.trust_host()
        yield kit


@pytest.fixture
def pg_platform(tmp_path: Path, hosted: HostedRepos, postgres_url: str) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path / "platform",
        database_url=postgres_url,
        git_timeout=120,
        ssh_connect_timeout=10,
    )
    with Store.open(settings) as store:
        kit = Platform(settings, store, hosted.host)
        kit.trust_host()
        try:
            yield kit
        finally:
            kit.app.close()


@pytest.fixture
def proxy(hosted: HostedRepos) -> Iterator[CountingProxy]:
    relay = CountingProxy(hosted.host.port)
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rl-platform-", dir="/tmp") as directory:
        monkeypatch.setattr(tempfile, "tempdir", directory)
        yield Path(directory)


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
