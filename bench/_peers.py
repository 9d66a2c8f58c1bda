"""Real peers for the benchmarks: a plain OpenSSH sshd, `repolink host serve`, git clients."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
REPOLINK = [sys.executable, "-m", "repolink"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def peak_rss_kib(pid: int) -> int:
    """The high-water mark of a running process's resident memory (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM not found")


@dataclass
class Client:
    """A git client with an isolated HOME and one key, talking to one known host."""

    home: Path
    key: Path
    known_hosts: Path

    @classmethod
    def create(cls, root: Path) -> Client:
        home = root / "client-home"
        home.mkdir(parents=True)
        key = home / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)],
            check=True,
        )
        return cls(home=home, key=key, known_hosts=home / "known_hosts")

    def trust(self, port: int) -> None:
        scanned = subprocess.run(
            # -T 30: on a loaded machine the host's first answer can take longer than the
            # default 5 s, and the scan then fails with nothing to show for it.
            ["ssh-keyscan", "-T", "30", "-p", str(port), "-t", "ed25519", "127.0.0.1"],
            check=True,
            capture_output=True,
        ).stdout
        with self.known_hosts.open("ab") as out:
            out.write(scanned)

    def env(self, port: int) -> dict[str, str]:
        ssh = (
            f"ssh -F /dev/null -i {self.key} -o IdentitiesOnly=yes -o IdentityAgent=none "
            f"-o BatchMode=yes -o StrictHostKeyChecking=yes "
            f"-o UserKnownHostsFile={self.known_hosts} -o GlobalKnownHostsFile=/dev/null -p {port}"
        )
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "GIT_SSH_COMMAND": ssh,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
        }

    def git(self, port: int, *args: str) -> None:
        subprocess.run(["git", *args], check=True, env=self.env(port), capture_output=True)


class OpenSSHServer:
    """A plain sshd on a loopback port; the client key may log in as the current user."""

    def __init__(self, root: Path, client: Client) -> None:
        self.root = root
        self.port = free_port()
        self.user = getpass.getuser()
        root.mkdir(parents=True)
        host_key = root / "ssh_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
        )
        authorized = root / "authorized_keys"
        shutil.copy(client.key.with_suffix(".pub"), authorized)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        config = root / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1:{self.port}\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {authorized}\nPidFile none\nUsePAM no\nStrictModes no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nMaxStartups 100\nMaxSessions 100\n"
            # As on a git host (docs/openssh-mode.md): clients speak protocol v2 to both servers.
            "AcceptEnv GIT_PROTOCOL\n"
        )
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(root / "sshd.log").open("wb"),
        )
        wait_for_port(self.port, self.proc)

    def url(self, repo: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def hosted_repository_dir(env: Mapping[str, str], repository_id: str) -> Path:
    """Where a repolink started with ``env`` keeps a hosted repository's bare directory: the
    path its own settings make (``REPOLINK_HOST_STORAGE``, else in its data directory)."""
    from repolink.settings import Settings

    storage = env.get("REPOLINK_HOST_STORAGE")
    settings = Settings(
        data_dir=Path(env["REPOLINK_DATA_DIR"]), host_storage=Path(storage) if storage else None
    )
    return settings.resolved_host_storage / f"{repository_id}.git"


class EmbeddedHost:
    """`repolink host serve` as a subprocess on its own data directory."""

    def __init__(self, root: Path, settings: dict[str, str] | None = None) -> None:
        """``settings``: ``REPOLINK_`` variables; by default the connection caps of the sshd
        above (MaxStartups 100), since every benchmark client comes from 127.0.0.1."""
        self.root = root
        self.port = free_port()
        if settings is None:
            settings = {
                "REPOLINK_SSH_MAX_STARTUPS": "100",
                "REPOLINK_SSH_MAX_STARTUPS_PER_SOURCE": "100",
            }
        self.env = {**os.environ, **settings, "REPOLINK_DATA_DIR": str(root / "data")}
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(
            [*REPOLINK, *args], env=self.env, input=stdin, capture_output=True, check=True
        )
        return done.stdout.decode()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *REPOLINK,
                "host",
                "serve",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--http",
                f"127.0.0.1:{free_port()}",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "host.log").open("wb"),
        )
        wait_for_port(self.port, self.proc)

    def url(self, full_name: str) -> str:
        return f"ssh://git@127.0.0.1:{self.port}/{full_name}.git"

    def repository_dir(self, repository_id: str) -> Path:
        """Where the host keeps a repository's bare directory."""
        return hosted_repository_dir(self.env, repository_id)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
