"""Several repolink processes on one PostgreSQL database, as issue 13 §4 runs them: API
processes (``repolink serve --no-workers``) and workers (``repolink worker``), each with a data
directory of its own, sharing the database and the master key — and a private PostgreSQL server
a test may stop and start.

- :class:`Cluster`: starts, kills and stops the processes of one test over ``pg_platform``'s
  database (the test process's own application on it sets projects up); every process's
  output goes to a log file under the test's directory, shown when an assertion needs it.
- :func:`signed_push_hook`: a signed ``generic`` push webhook for a repository URL.
- :class:`PrivatePostgres`: ``initdb`` + ``pg_ctl`` on a free loopback port in a temp
  directory (as the ``postgres`` user when the tests run as root), for a test that restarts
  its server — never the machine's shared one.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import httpx
import psycopg

from repolink.http.webhooks_in import hook_path
from repolink.jobs.procrastinate_backend import conninfo
from repolink.signing import sign_body
from support.platformkit import Platform
from support.servekit import Service, drain_output, service_environment, serving_service

WAIT = 120.0
WORKER = [sys.executable, "-m", "repolink", "worker"]
TOKEN = "cluster-admin-token"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

T = TypeVar("T")


def until(predicate: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    """The first true value of ``predicate``, polled; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.1)
    return value


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[str]
    data_dir: Path
    log: Path


@dataclass
class Cluster:
    """The processes of one test on ``platform``'s database."""

    platform: Platform
    root: Path
    settings: dict[str, str]
    apis: list[Service] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _logs: list[IO[str]] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def on(
        cls, platform: Platform, root: Path, settings: Mapping[str, str] | None = None
    ) -> Iterator[Cluster]:
        """A cluster on ``platform``'s database; every process it started is killed at the end."""
        shared = {
            "REPOLINK_DATABASE_URL": platform.settings.resolved_database_url,
            # One master key for all: read from the platform's key file, never copied.
            "REPOLINK_SECRET_KEY_FILE": str(platform.settings.resolved_secret_key_file),
            "REPOLINK_ADMIN_TOKEN": TOKEN,
            "REPOLINK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "REPOLINK_SHUTDOWN_GRACE": "1",
            "REPOLINK_GIT_TIMEOUT": "120",
            # A killed process's fetch is taken over once its lease ends: seconds, not a minute.
            "REPOLINK_FETCH_LEASE": "6",
            "REPOLINK_WORKER_STALLED_AFTER": "6",
            **(settings or {}),
        }

        cluster = cls(platform, root, shared)
        try:
            yield cluster
        finally:
            cluster.close()

    @property
    def database_url(self) -> str:
        return self.settings["REPOLINK_DATABASE_URL"]

    def start_api(self, name: str) -> Service:
        service = self._stack.enter_context(
            serving_service(self.root / name, self.settings, args=["--no-workers"], ssh=False)
        )
        drain_output(service, self.root / f"{name}.log")
        self.apis.append(service)
        return service

    def kill_api(self, service: Service) -> None:
        """SIGKILL an API process; the hooks sent from now on go to the others."""
        service.process.send_signal(signal.SIGKILL)
        service.process.wait()
        self.apis.remove(service)

    def start_worker(self, name: str, concurrency: int = 2) -> Worker:
        log = self.root / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("a", encoding="utf-8")
        self._logs.append(out)
        data_dir = self.root / name
        process = subprocess.Popen(
            [*WORKER, "--concurrency", str(concurrency)],
            env=service_environment(data_dir, self.settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        worker = Worker(name, process, data_dir, log)
        self.workers.append(worker)
        return worker

    def workers_running(self, count: int) -> None:
        """Wait until ``count`` workers are registered with procrastinate (heartbeating)."""

        def registered() -> bool:
            with psycopg.connect(conninfo(self.database_url), autocommit=True) as db:
                row = db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            return bool(row) and int(row[0]) >= count

        until(registered, f"{count} workers running")

    def client(self, service: Service) -> httpx.Client:
        return httpx.Client(
            base_url=service.url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            trust_env=False,
            timeout=WAIT,
        )

    def logs(self) -> str:
        """Every process's log, for an assertion's message."""
        texts = []
        for log in sorted(self.root.glob("*.log")):
            texts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-6000:]}")
        return "\n".join(texts)

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
        self._stack.close()
        for out in self._logs:
            out.close()


def stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM, and the exit status once it stopped."""
    process.send_signal(signal.SIGTERM)
    return process.wait(WAIT)


def signed_push_hook(secret: str, url: str, delivery: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a ``generic`` push webhook for the repository at ``url``."""
    body = json.dumps({"repository": url}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Repolink-Event": "push",
        "X-Repolink-Delivery": delivery,
        "X-Repolink-Signature": sign_body(secret.encode(), body),
    }
    return body, headers


def push_hook_path(project: str) -> str:
    return hook_path("generic", project)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivatePostgres:
    """A PostgreSQL 15 server of one test, in a temp directory on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="rl-private-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"],
            "initdb",
        )

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not (PG_BIN / "initdb").exists():
            return f"no PostgreSQL 15 binaries in {PG_BIN}"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root with no 'postgres' user to run a private PostgreSQL"
        return None

    def _run(self, argv: list[str], what: str) -> None:
        if self._user is not None:
            argv = ["runuser", "-u", self._user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{what} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "start",
            ],
            "pg_ctl start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            "pg_ctl stop",
        )

    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
