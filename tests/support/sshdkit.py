"""OpenSSH ``sshd`` on a loopback port, serving the built-in host in OpenSSH mode.

sshd is picky, and each rule below is one of its checks:

- it must run as root, from an absolute path, with ``/run/sshd`` present;
- the login user must exist. The production user is ``git``: when this Python (and repolink)
  can be run by another user, the fixture creates a system user ``git`` if missing. When they
  cannot — e.g. a Python under root's 0700 home — the sessions log in as ``root`` instead;
  everything else (AuthorizedKeysCommand, forced command, authorization) is the same;
- ``AuthorizedKeysCommand`` must be an absolute path owned by root in directories nobody else
  may write (so not under /tmp): a small wrapper in a fresh directory under
  ``~/.cache/repolink-tests``, removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import repolink
from support.postgres import database_env

SSHD = Path("/usr/sbin/sshd")
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class SshdHost:
    port: int
    login_user: str
    data_dir: Path
    known_hosts: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def require_sshd() -> None:
    if not SSHD.exists():
        pytest.skip(f"OpenSSH sshd is not installed at {SSHD} (CI installs openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("sshd must be started as root to switch to the login user")


def _runnable_by_others(path: Path) -> bool:
    """Whether a user other than root can reach (and read) ``path``."""
    path = path.resolve()
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def choose_login_user() -> str:
    """``git`` when it can run this Python and repolink, else ``root`` (see module docstring)."""
    package = Path(repolink.__file__).parent
    if not (_runnable_by_others(Path(sys.executable)) and _runnable_by_others(package)):
        return "root"
    try:
        pwd.getpwnam("git")
    except KeyError:
        home = Path("/var/lib/repolink-git")
        result = subprocess.run(
            ["useradd", "--system", "--shell", "/bin/sh", "--home-dir", str(home), "git"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot create the system user git for sshd: {result.stderr.strip()}")
    return "git"


def new_data_dir(work: Path, login_user: str) -> Path:
    """A data directory the login user can reach (pytest's temp root is private to root)."""
    if login_user == "root":
        return work / "data"
    return Path(tempfile.mkdtemp(prefix="repolink-sshd-data-"))


def hand_over(data_dir: Path, login_user: str) -> None:
    """Give the data directory to the login user: the forced command writes the database."""
    if login_user == "root":
        return
    entry = pwd.getpwnam(login_user)
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited at start:\n{log_path.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen within {START_TIMEOUT} s:\n{log_path.read_text()}")


@contextlib.contextmanager
def run_sshd(
    work: Path, data_dir: Path, login_user: str, *, openssh_url: bool = True
) -> Iterator[SshdHost]:
    """sshd in OpenSSH mode for ``data_dir``, until the block ends; without ``openssh_url``
    its pushes queue no fetch (REPOLINK_OPENSSH_URL unset)."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    host_key = work / "ssh_host_ed25519_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    cache = Path.home() / ".cache" / "repolink-tests"
    cache.mkdir(mode=0o755, parents=True, exist_ok=True)
    command_dir = Path(tempfile.mkdtemp(prefix="sshd-", dir=cache))
    try:
        command_dir.chmod(0o755)
        port = _free_port()
        wrapper = command_dir / "authorized-keys"
        # As docs/openssh-mode.md sets it up: a push queues the fetches of the projects of
        # this data directory connected through this sshd.
        address = [f"REPOLINK_OPENSSH_URL=ssh://{login_user}@127.0.0.1:{port}"]
        wrapper.write_text(
            "#!/bin/sh\n"
            + shlex.join(
                [
                    "exec",
                    "env",
                    f"REPOLINK_DATA_DIR={data_dir}",
                    *(f"{name}={value}" for name, value in database_env(data_dir).items()),
                    *(address if openssh_url else []),
                    sys.executable,
                    "-m",
                    "repolink",
                    "host",
                    "authorized-keys",
                    "--git-user",
                    login_user,
                ]
            )
            + ' "$@"\n'
        )
        wrapper.chmod(0o755)
        config = work / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress 127.0.0.1:{port}",
                    f"HostKey {host_key}",
                    "PidFile none",
                    "UsePAM no",
                    "StrictModes no",
                    "AuthorizedKeysFile none",
                    f"AuthorizedKeysCommand {wrapper} %u %t %k",
                    "AuthorizedKeysCommandUser root",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    f"AllowUsers {login_user}",
                    "AcceptEnv GIT_PROTOCOL",
                    # Sessions deliver webhooks to loopback receivers (tests/conftest.py).
                    "SetEnv REPOLINK_ALLOWED_NETWORKS=127.0.0.0/8,::1/128",
                    "DisableForwarding yes",
                    "PermitTTY no",
                    "LogLevel VERBOSE",
                ]
            )
            + "\n"
        )
        checked = subprocess.run(
            [str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True
        )
        if checked.returncode != 0:
            raise RuntimeError(f"sshd refused the test configuration: {checked.stderr}")
        log_path = work / "sshd.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        try:
            _wait_for_port(port, process, log_path)
            known_hosts = work / "known_hosts"
            public = host_key.with_name(host_key.name + ".pub").read_text().split()
            known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
            yield SshdHost(port, login_user, data_dir, known_hosts, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(command_dir, ignore_errors=True)
