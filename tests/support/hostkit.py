"""Helpers of the built-in host's tests: real keys, git/ssh clients, an embedded server.

- ``generate_key_pair``: key pairs made by ``ssh-keygen`` at test time.
- ``GitClient``: ``git`` and ``ssh`` with an isolated HOME, one key, strict host key checking.
- ``start_embedded_host``: the embedded SSH server on 127.0.0.1, port 0, in a loop thread,
  with a known_hosts file built from its host keys and a record of the pushes it reported.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from repolink.app import Repolink
from repolink.host.events import RefUpdate
from repolink.host.info import RepositoryInfo
from repolink.host.service import HostService
from repolink.settings import Settings
from repolink.ssh.limits import SSHLimits
from repolink.ssh.server import RunningSSHServer, start_ssh_server
from repolink.store import Store

T = TypeVar("T")

CLIENT_TIMEOUT = 60


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed; the host tests drive the real {binary}")
    return path


# -- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_line: str

    @property
    def fingerprint(self) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.private_path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()[1]


def generate_key_pair(directory: Path, name: str, key_type: str = "ed25519") -> KeyPair:
    _require("ssh-keygen")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"{name}@tests", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return KeyPair(path, path.with_name(name + ".pub").read_text().strip())


# -- git and ssh clients ----------------------------------------------------------------------


@dataclass
class GitClient:
    """The system git and ssh, as a user with ``home`` as HOME and only ``key`` to offer."""

    home: Path
    key: KeyPair
    known_hosts: Path
    port: int
    user: str = "git"
    ssh_options: list[str] = field(default_factory=list)

    def ssh_argv(self, *options: str) -> list[str]:
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.key.private_path)]
        for option in (
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "BatchMode=yes",
            f"UserKnownHostsFile={self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "ConnectTimeout=10",
            *self.ssh_options,
            *options,
        ):
            argv += ["-o", option]
        return argv

    def env(self, *ssh_options: str) -> dict[str, str]:
        self.home.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSH_COMMAND": shlex.join(self.ssh_argv(*ssh_options)),
            "GIT_AUTHOR_NAME": "Test Author",
            "GIT_AUTHOR_EMAIL": "author@example.com",
            "GIT_COMMITTER_NAME": "Test Author",
            "GIT_COMMITTER_EMAIL": "author@example.com",
        }

    def url(self, path: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}/{path}"

    def git(
        self, *args: str, cwd: Path | None = None, ssh_options: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.env(*ssh_options),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=CLIENT_TIMEOUT,
        )

    def ssh(
        self, command: str | None, *options: str, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.ssh_argv(*options), "-p", str(self.port), f"{self.user}@127.0.0.1"]
        if command is not None:
            argv.append(command)
        return subprocess.run(
            argv,
            env=self.env(),
            capture_output=True,
            text=True,
            input=input if input is not None else "",
            timeout=CLIENT_TIMEOUT,
        )

    def with_user(self, user: str) -> GitClient:
        return GitClient(self.home, self.key, self.known_hosts, self.port, user, self.ssh_options)


def make_source_repository(path: Path, env: dict[str, str], commits: int = 2) -> list[str]:
    """A local non-bare repository with ``commits`` commits on main; their hashes, oldest first."""
    subprocess.run(
        ["git", "init", "-q", "-b", "main", str(path)], env=env, check=True, capture_output=True
    )
    hashes = []
    for number in range(commits):
        (path / "file.txt").write_text(f"content {number}\n")
        for args in (["add", "file.txt"], ["commit", "-q", "-m", f"commit {number}"]):
            subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
        hashes.append(
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=path,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    return hashes


# -- the embedded server, in a thread of its own ----------------------------------------------


class LoopThread:
    """An asyncio loop in a background thread, so tests can block on git subprocesses."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.run(self._cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    @staticmethod
    async def _cancel_leftovers() -> None:
        """What asyncio.run does at its end: no task is destroyed pending with the loop."""
        leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)


@dataclass
class EmbeddedHost:
    settings: Settings
    store: Store
    service: HostService
    server: RunningSSHServer
    known_hosts: Path
    root: Path
    pushes: list[tuple[RepositoryInfo, list[RefUpdate]]]
    pushed: threading.Condition

    @property
    def port(self) -> int:
        return self.server.port

    def client(self, key: KeyPair, name: str = "client") -> GitClient:
        return GitClient(self.root / "homes" / name, key, self.known_hosts, self.port)

    def key(self, name: str) -> KeyPair:
        return generate_key_pair(self.root / "keys", name)

    def wait_for_pushes(self, count: int, timeout: float = 10) -> None:
        with self.pushed:
            if not self.pushed.wait_for(lambda: len(self.pushes) >= count, timeout):
                raise AssertionError(f"expected {count} push reports, got {len(self.pushes)}")


def start_embedded_host(
    root: Path,
    loop: LoopThread,
    port: int = 0,
    limits: SSHLimits | None = None,
    on_push: Callable[[RepositoryInfo, list[RefUpdate]], Coroutine[Any, Any, None]] | None = None,
) -> tuple[EmbeddedHost, Callable[[], None]]:
    """``limits`` default to the settings' defaults, except that every test client comes
    from 127.0.0.1: one source may start as many connections as all sources together.
    ``on_push`` hears every push after it is recorded (as a server's background work does)."""
    _require("git")
    _require("ssh")
    settings = Settings(data_dir=root / "data")
    if limits is None:
        limits = SSHLimits.from_settings(
            settings.model_copy(update={"ssh_max_startups_per_source": settings.ssh_max_startups})
        )
    store = Store.open(settings)
    application = Repolink(settings, store=store)
    service = application.host
    pushes: list[tuple[RepositoryInfo, list[RefUpdate]]] = []
    pushed = threading.Condition()

    async def recorded(repository: RepositoryInfo, updates: list[RefUpdate]) -> None:
        with pushed:
            pushes.append((repository, updates))
            pushed.notify_all()
        if on_push is not None:
            await on_push(repository, updates)

    server = loop.run(start_ssh_server(application, port=port, on_push=recorded, limits=limits))
    known_hosts = root / "known_hosts"
    known_hosts.write_text("\n".join(server.known_hosts_lines("127.0.0.1")) + "\n")
    host = EmbeddedHost(settings, store, service, server, known_hosts, root, pushes, pushed)

    def stop() -> None:
        loop.run(server.close())
        store.close()

    return host, stop
