"""Helpers of the platform tests: the built-in host as the peer, a platform data directory.

- ``HostedRepos``: the embedded SSH host (from ``hostkit``) with repositories ``team/app``
  and ``team/other``, each populated by a real push from a developer's account key.
- ``Platform``: a platform data directory (store, settings) that trusts the host's key and
  connects projects to the hosted repositories, starting its processes through ``runner`` (a
  :class:`support.recording.RecordingRunner` lets a test see them).
- ``control_socket_of`` / ``master_command`` / ``close_shared_connection``: the shared SSH
  connection of a project's fetches, and ``ssh -O`` to it.
- ``CountingProxy``: a TCP relay in front of the host that counts the connections it accepts.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from repolink import knownhosts
from repolink.app import Repolink
from repolink.git import keyscan
from repolink.git.runner import GitRunner, HardenedRunner
from repolink.git.sharing import control_path
from repolink.keys import PrivateKey, generate_key
from repolink.platform.connect import ConnectOutcome
from repolink.platform.connections import ConnectionInfo
from repolink.platform.fetch import FetchResult
from repolink.settings import Settings
from repolink.store import Store
from repolink.urls import parse_ssh_url
from support.hostkit import EmbeddedHost, GitClient, KeyPair, make_source_repository

WORKSPACE = "team"


@dataclass
class HostedRepo:
    """A hosted repository and a local clone that pushes to it with an account key."""

    host: EmbeddedHost
    slug: str
    client: GitClient
    source: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def path(self) -> Path:
        return self.host.service.repository_path(
            self.host.service.get_repository(WORKSPACE, self.slug)
        )

    def url(self, port: int | None = None) -> str:
        return f"ssh://git@127.0.0.1:{port or self.host.port}/{WORKSPACE}/{self.slug}.git"

    def git(self, *args: str) -> str:
        done = self.client.git(*args, cwd=self.source)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def commit(self, message: str, *, branch: str = "main") -> str:
        """One new commit on ``branch`` (which must exist in the source), pushed; its sha."""
        with self._lock:
            if branch != "main":
                self.git("checkout", "-q", branch)
            try:
                with (self.source / "changes.txt").open("a") as handle:
                    handle.write(message + "\n")
                self.git("add", "changes.txt")
                self.git("commit", "-q", "-m", message)
                self.push(f"{branch}:{branch}")
                return self.git("rev-parse", "HEAD")
            finally:
                if branch != "main":
                    self.git("checkout", "-q", "main")

    def commit_file(self, name: str, size: int = 16, message: str | None = None) -> str:
        """One new commit on main adding ``name`` with ``size`` random bytes (a large one
        makes a slow fetch), pushed; its sha."""
        with self._lock:
            (self.source / name).write_bytes(os.urandom(size))
            self.git("add", name)
            self.git("commit", "-q", "-m", message or f"add {name}")
            self.push("main:main")
            return self.git("rev-parse", "HEAD")

    def push(self, *refspecs: str) -> None:
        self.git(
            "push", "-q", "--force", self.client.url(f"{WORKSPACE}/{self.slug}.git"), *refspecs
        )

    def host_commits(self, rev: str = "--all") -> list[str]:
        """Commits of the hosted repository reachable from ``rev``, as git lists them."""
        out = subprocess.run(
            ["git", f"--git-dir={self.path}", "rev-list", rev],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()


@dataclass
class HostedRepos:
    host: EmbeddedHost
    account: KeyPair
    app: HostedRepo
    other: HostedRepo


def populate(host: EmbeddedHost, commits: int = 12) -> HostedRepos:
    """``team/app`` (``commits`` commits on main, a branch and two tags) and ``team/other``."""
    service = host.service
    account = host.key("account")
    service.create_repository(WORKSPACE, "app")
    service.create_repository(WORKSPACE, "other")
    service.add_account_key(WORKSPACE, account.public_line, label="developer")
    client = host.client(account, name="account")
    repos = []
    for slug, count in (("app", commits), ("other", 3)):
        source = host.root / f"source-{slug}"
        make_source_repository(source, client.env(), commits=count)
        repo = HostedRepo(host, slug, client, source)
        repo.push("main:main")
        repos.append(repo)
    app = repos[0]
    app.git("tag", "v1.0", "HEAD~2")
    app.git("tag", "-a", "v1.1", "-m", "release 1.1", "HEAD~1")
    app.git("branch", "feature", "HEAD~3")
    app.push("refs/tags/v1.0", "refs/tags/v1.1", "feature:feature")
    return HostedRepos(host, account, app, repos[1])


@dataclass
class Platform:
    """One platform data directory, trusting the embedded host's key."""

    settings: Settings
    store: Store
    host: EmbeddedHost
    runner: GitRunner = field(default_factory=HardenedRunner)

    @functools.cached_property
    def app(self) -> Repolink:
        """The application on this data directory and store, as the CLI or a server builds it."""
        return Repolink(self.settings, store=self.store, runner=self.runner)

    def trust_host(self, port: int | None = None) -> None:
        with self.store.session() as session:
            for fingerprint in self.host.server.host_key_fingerprints:
                knownhosts.trust(
                    session,
                    "127.0.0.1",
                    port or self.host.port,
                    fingerprint,
                    scanner=keyscan.scanner_for(self.settings, self.runner),
                )

    def project(self, slug: str) -> str:
        return self.app.projects.create_project(slug.replace("-", " ").title(), slug=slug).slug

    def connect(
        self,
        slug: str,
        url: str,
        key: PrivateKey | None = None,
        *,
        grant_on: str | None = None,
        create: bool = True,
    ) -> ConnectOutcome:
        """Create project ``slug`` (unless ``create`` is false) and connect it; ``grant_on``:
        add the (possibly generated) deploy key as a read-only access key of that hosted
        repository before the fetch."""
        if create:
            self.project(slug)

        def grant(connection: ConnectionInfo) -> None:
            if grant_on is not None:
                line = connection.deploy_key.public_key
                self.host.service.add_access_key(WORKSPACE, grant_on, line, label=slug)

        return self.app.connections.connect(slug, url, key=key, before_fetch=grant)

    def fetch(self, slug: str, **kwargs: object) -> FetchResult:
        return self.app.fetches.fetch_project(slug, **kwargs)  # type: ignore[arg-type]


def granted_key(host: EmbeddedHost, repo: str, label: str) -> PrivateKey:
    """A new key pair added as a read-only access key of ``team/<repo>``."""
    key = generate_key()
    host.service.add_access_key(WORKSPACE, repo, key.public_key.openssh_line(), label=label)
    return key


def control_socket_of(
    platform: Platform, project: str, *, pinned_address: str | None = None
) -> Path:
    """The control socket the fetches of ``project`` share (``pinned_address``: those of a
    client's URL, whose ssh connects to that checked address)."""
    info = platform.app.connections.connection_info(project)
    url = parse_ssh_url(info.url)
    with platform.store.session() as session:
        known_hosts = knownhosts.known_hosts_text(session, [url])
    path = control_path(
        platform.settings,
        url=url,
        key_fingerprint=info.deploy_key.fingerprint_sha256,
        known_hosts=known_hosts,
        pinned_address=pinned_address,
    )
    assert path is not None
    return path


def close_shared_connection(
    platform: Platform, project: str, key_fingerprint: str, home: Path
) -> None:
    """End the shared SSH connection of ``project``'s fetches with the key ``key_fingerprint``
    (``ssh -O exit``, ``home`` its HOME): the next fetch authenticates anew."""
    url = parse_ssh_url(platform.app.connections.connection_info(project).url)
    with platform.store.session() as session:
        known_hosts = knownhosts.known_hosts_text(session, [url])
    path = control_path(
        platform.settings, url=url, key_fingerprint=key_fingerprint, known_hosts=known_hosts
    )
    assert path is not None
    master_command(path, home, "exit")
    # The master answers "exit" first and removes its socket as it ends, a moment later.
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not path.exists(), "the shared connection did not end"


def master_command(socket_path: Path, home: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``ssh -O command`` (check, exit) to the master listening at ``socket_path``."""
    home.mkdir(exist_ok=True)
    return subprocess.run(
        ["ssh", "-F", os.devnull, "-o", f"ControlPath={socket_path}", "-O", command, "127.0.0.1"],
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


class CountingProxy:
    """A TCP relay on 127.0.0.1 in front of ``target_port`` that counts what it accepts.

    ``throttle`` (seconds, changeable at any time) is slept after each chunk of at most
    ``THROTTLED_CHUNK`` bytes it relays: a slow peer. ``relayed`` counts the bytes. While
    ``hold`` is set, what the target sends is dropped instead of relayed (a peer gone quiet),
    and the target closing a connection closes the client's at once, nothing left to drain."""

    THROTTLED_CHUNK = 4096

    def __init__(self, target_port: int) -> None:
        self.throttle: float | None = None
        self.hold = False
        self.relayed = 0
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target))
            except OSError:  # the target is gone: so is the client's connection
                client.close()
                continue
            self._sockets += [client, upstream]
            for source, sink, from_target in ((client, upstream, False), (upstream, client, True)):
                pump = threading.Thread(
                    target=self._pump, args=(source, sink, from_target), daemon=True
                )
                pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_target: bool) -> None:
        try:
            while data := source.recv(self.THROTTLED_CHUNK if self.throttle else 1 << 16):
                if self.hold and from_target:
                    continue
                sink.sendall(data)
                self.relayed += len(data)
                if self.throttle:
                    time.sleep(self.throttle)
            # Held: the client is cut off both ways (its own pump wakes too).
            sink.shutdown(socket.SHUT_RDWR if self.hold and from_target else socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for sock in self._sockets:  # ends the ssh master the tests left behind
            sock.close()
