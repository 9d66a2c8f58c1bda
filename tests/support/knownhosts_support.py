"""Helpers for the host key tests: a real SSH server on 127.0.0.1 and a real ssh client.

The server is asyncssh on a loopback port with host keys generated per test; it accepts no
client key, because these tests are about the step before authentication. It runs on an
event loop in a thread of its own so the synchronous code under test (subprocesses, the
store) runs unchanged, and it can be restarted on the same port with other host keys.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from repolink.git.environment import hardened_env, ssh_command
from repolink.git.runner import CompletedRun, HardenedRunner
from repolink.keys import generate_key
from repolink.knownhosts import host_key_ssh_options

T = TypeVar("T")


class _RefuseEveryone(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return False


class LoopbackSSHServer:
    """An SSH server on 127.0.0.1 that presents ``host_keys`` and lets nobody in."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: Any = None
        self.port = 0
        self.host_keys: list[asyncssh.SSHKey] = []

    def start(self, host_keys: list[asyncssh.SSHKey]) -> None:
        self.host_keys = host_keys

        async def listen() -> Any:
            return await asyncssh.listen(
                "127.0.0.1",
                self.port,
                server_host_keys=host_keys,
                server_factory=_RefuseEveryone,
                reuse_address=True,
            )

        self._server = self._run(listen())
        self.port = self._server.sockets[0].getsockname()[1]

    def restart(self, host_keys: list[asyncssh.SSHKey]) -> None:
        """Same port, other host keys: what a client sees when a server's key is replaced."""
        self.stop()
        self.start(host_keys)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._run(self._server.wait_closed())
            self._server = None

    def fingerprints(self) -> list[str]:
        return [key.get_fingerprint("sha256") for key in self.host_keys]

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)


def host_key(kind: str = "ssh-ed25519") -> asyncssh.SSHKey:
    return asyncssh.generate_private_key(kind)


class SSHClient:
    """The real OpenSSH client with repolink's hardened options plus the host key reporter."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.known_hosts = directory / "known_hosts"
        self.key_path = directory / "id"
        self.key_path.write_bytes(generate_key("ed25519").to_openssh())
        self.key_path.chmod(0o600)
        (directory / "home").mkdir(mode=0o700)

    def argv(self, port: int) -> list[str]:
        argv = ssh_command(
            key_path=self.key_path,
            known_hosts_path=self.known_hosts,
            connect_timeout=10,
            port=port,
        )
        return [*argv, *host_key_ssh_options()]

    def connect(self, port: int, known_hosts: str) -> CompletedRun:
        self.known_hosts.write_text(known_hosts)
        argv = [*self.argv(port), "--", "git@127.0.0.1", "git-upload-pack '/x.git'"]
        return HardenedRunner().run(argv, env=hardened_env(self.directory / "home"), timeout=60)
