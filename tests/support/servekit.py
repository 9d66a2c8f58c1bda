"""``repolink host serve`` and ``repolink serve`` as real subprocesses on ports they pick,
with the ports they report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from support.postgres import database_env

SERVE = [sys.executable, "-m", "repolink", "host", "serve"]
SERVICE = [sys.executable, "-m", "repolink", "serve"]


@contextmanager
def serving(
    data_dir: Path, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """The server process, its SSH port and its HTTP port, until the block ends.

    ``settings`` are its ``REPOLINK_`` variables besides the data directory; nothing of this
    process's own ``REPOLINK_`` environment goes with them.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env["REPOLINK_DATA_DIR"] = str(data_dir)
    env.update(database_env(data_dir))
    env.update(settings or {})
    process = subprocess.Popen(
        [*SERVE, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ssh_port = http_port = 0
        while not (ssh_port and http_port):
            line = process.stdout.readline()
            if not line:
                pytest.fail(
                    f"serve exited early: {process.stderr.read() if process.stderr else ''}"
                )
            if match := re.match(r"SSH server on 127\.0\.0\.1:(\d+)", line):
                ssh_port = int(match.group(1))
                # Asked for port 0: the clone address names the port really bound.
                assert f"(clone: ssh://git@127.0.0.1:{ssh_port}/WS/SLUG.git)" in line, line
            if match := re.match(r"HTTP API on http://127\.0\.0\.1:(\d+)/", line):
                http_port = int(match.group(1))
        yield process, ssh_port, http_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class Service:
    """A running ``repolink serve``: its process, the ports it bound and what it printed."""

    process: subprocess.Popen[str]
    http_port: int
    ssh_port: int | None
    printed: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ssh_url_base(self) -> str:
        return f"ssh://git@127.0.0.1:{self.ssh_port}"


def service_environment(
    data_dir: Path, settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a server process: the data directory and ``settings``, nothing of
    this process's own ``REPOLINK_`` variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env["REPOLINK_DATA_DIR"] = str(data_dir)
    env.update(database_env(data_dir))
    env.update(settings or {})
    return env


@contextmanager
def serving_service(
    data_dir: Path,
    settings: Mapping[str, str] | None = None,
    *,
    args: Sequence[str] = (),
    ssh: bool = True,
    ssh_port: int = 0,
) -> Iterator[Service]:
    """``repolink serve`` on port 0 (and its SSH host on ``ssh_port``, by default 0, unless
    ``ssh`` is false), once it has printed its addresses; killed at the end if the block left
    it running."""
    process = _start_service(data_dir, settings, args, ssh, ssh_port)
    try:
        yield _started(process, ssh)
    finally:
        _kill(process)


@contextmanager
def serving_services(
    data_dirs: Sequence[Path],
    settings: Mapping[str, str] | None = None,
    *,
    args: Sequence[str] = (),
) -> Iterator[list[Service]]:
    """``repolink serve`` with an SSH host, one per data directory, all started at once (as a
    deployment's processes may be) and each waited for as :func:`serving_service` does."""
    processes: list[subprocess.Popen[str]] = []
    try:
        for data_dir in data_dirs:
            processes.append(_start_service(data_dir, settings, args, True, 0))
        yield [_started(process, True) for process in processes]
    finally:
        for process in processes:
            _kill(process)


def _start_service(
    data_dir: Path,
    settings: Mapping[str, str] | None,
    args: Sequence[str],
    ssh: bool,
    ssh_port: int,
) -> subprocess.Popen[str]:
    ssh_args = ["--ssh-listen", f"127.0.0.1:{ssh_port}" if ssh else "off"]
    return subprocess.Popen(
        [*SERVICE, "--listen", "127.0.0.1:0", *ssh_args, *args],
        env=service_environment(data_dir, settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _started(process: subprocess.Popen[str], ssh: bool) -> Service:
    """The server once it has printed its addresses."""
    assert process.stdout is not None
    printed: list[str] = []
    ssh_port = http_port = 0
    # The HTTP API starts last and its lines end with the workers' line.
    while not printed or not printed[-1].startswith("workers:"):
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"serve exited early: {process.stderr.read() if process.stderr else ''}")
        printed.append(line.rstrip("\n"))
        if match := re.match(r"SSH server on 127\.0\.0\.1:(\d+)", line):
            ssh_port = int(match.group(1))
        if match := re.match(r"HTTP API on http://127\.0\.0\.1:(\d+)/api/v1$", line):
            http_port = int(match.group(1))
    assert http_port, printed
    assert bool(ssh_port) == ssh, printed
    return Service(process, http_port, ssh_port or None, printed)


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def drain_output(service: Service, log: Path) -> None:
    """Append what the server prints from now on, on stdout and stderr, to ``log``, read by
    threads: a server kept for many tests would otherwise block once a pipe nobody reads is
    full. The threads end when the process closes its pipes."""
    log.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def copy(stream: IO[str] | None, label: str) -> None:
        if stream is None:
            return
        for line in stream:
            with lock, log.open("a", encoding="utf-8") as out:
                out.write(f"{label}: {line}")

    with log.open("a", encoding="utf-8") as out:
        out.write("".join(f"stdout: {line}\n" for line in service.printed))
    for stream, label in ((service.process.stdout, "stdout"), (service.process.stderr, "stderr")):
        threading.Thread(target=copy, args=(stream, label), daemon=True).start()
