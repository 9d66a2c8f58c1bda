"""The seed flow on a running ``repolink serve``, driven over HTTP and git only: a hosted
repository with commits pushed by a person, a project connected to it with a generated deploy
key that the host API grants read access.

Shared by the end-to-end tests of the server and the browser tests, which set up through the
API what is not the flow under test.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from support.hostkit import GitClient, KeyPair, generate_key_pair, make_source_repository
from support.servekit import Service

WAIT = 60.0
WORKSPACE, SLUG = "acme", "widgets"
HOST_API = "/host/api/2.0"
BIG_FILE_BYTES = 3 << 20

T = TypeVar("T")


def ok(answer: httpx.Response, *statuses: int) -> Any:
    """The JSON of an answer with one of ``statuses`` (default 200); anything else fails."""
    assert answer.status_code in (statuses or (200,)), f"{answer.request.url}: {answer.text}"
    return answer.json() if answer.content else None


def api_client(service: Service, token: str) -> httpx.Client:
    """A client of ``service``'s APIs with ``token`` as its bearer token."""
    return httpx.Client(
        base_url=service.url,
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=WAIT,
    )


def until(predicate: Callable[[], T], what: str) -> T:
    """The first true value of ``predicate``, polled; fails after :data:`WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what}: not within {WAIT:g} s"
        time.sleep(0.05)
    return value


def printed_host_keys(service: Service) -> set[str]:
    return {line.split()[-1] for line in service.printed if line.startswith("  host key ")}


def scanned_known_hosts(service: Service, path: Path) -> Path:
    """The SSH host's keys as ssh-keyscan sees them, checked against the fingerprints serve
    printed at start: the git client trusts exactly those."""
    scanned = subprocess.run(
        ["ssh-keyscan", "-p", str(service.ssh_port), "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    ).stdout
    path.write_text(scanned)
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fingerprints = {line.split()[1] for line in listed.splitlines()}
    assert fingerprints and fingerprints <= printed_host_keys(service), listed
    return path


@dataclass
class Pusher:
    """A person with an account key on the workspace, and a working copy of the repository."""

    client: GitClient
    work: Path
    path: str = f"{WORKSPACE}/{SLUG}.git"

    def commit(self, message: str, *, big: bool = False) -> str:
        env = self.client.env()
        if big:
            (self.work / "big.bin").write_bytes(os.urandom(BIG_FILE_BYTES))
        else:
            (self.work / "file.txt").write_text(f"{message}\n")
        for args in (["add", "-A"], ["commit", "-qm", message]):
            done = subprocess.run(["git", *args], cwd=self.work, env=env, capture_output=True)
            assert done.returncode == 0, done.stderr
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=self.work, env=env, capture_output=True, text=True
        ).stdout.strip()

    def push(self) -> None:
        pushed = self.client.git("push", self.client.url(self.path), "main", cwd=self.work)
        assert pushed.returncode == 0, pushed.stderr


def hosted_repository(
    api: httpx.Client,
    service: Service,
    root: Path,
    *,
    workspace: str = WORKSPACE,
    slug: str = SLUG,
    commits: int = 2,
) -> tuple[Pusher, list[str]]:
    """``workspace/slug`` on the built-in host with ``commits`` commits pushed by a person's
    account key (keys, home and working copy under ``root``); the pusher and the commits,
    oldest first."""
    person: KeyPair = generate_key_pair(root / "keys", "person")
    ok(
        api.post(
            f"{HOST_API}/workspaces/{workspace}/ssh-keys",
            json={"key": person.public_line, "label": "person"},
        ),
        200,
        201,
    )
    ok(api.post(f"{HOST_API}/repositories/{workspace}/{slug}", json={}), 200, 201)
    known_hosts = scanned_known_hosts(service, root / "known_hosts")
    client = GitClient(root / "home", person, known_hosts, service.ssh_port or 0)
    work = root / "work"
    first = make_source_repository(work, client.env(), commits=commits)
    pusher = Pusher(client, work, f"{workspace}/{slug}.git")
    pusher.push()
    return pusher, first


def connect_project(
    api: httpx.Client,
    service: Service,
    host_port: int,
    *,
    name: str = "Widgets",
    workspace: str = WORKSPACE,
    slug: str = SLUG,
) -> dict[str, Any]:
    """Project ``name`` (whose slug must be ``slug``), its host keys trusted for
    127.0.0.1:``host_port`` (the SSH host, or a relay in front of it), connected to
    ``workspace/slug`` with a generated deploy key that the host API then grants read access;
    the connection as the API answered it."""
    project = ok(api.post("/api/v1/projects", json={"name": name}), 201)
    assert project["slug"] == slug
    for fingerprint in printed_host_keys(service):
        trusted = api.post(
            "/api/v1/known-hosts",
            json={"host": "127.0.0.1", "port": host_port, "fingerprint": fingerprint},
        )
        ok(trusted, 200, 201)
    url = f"ssh://git@127.0.0.1:{host_port}/{workspace}/{slug}.git"
    connection = ok(
        api.put(
            f"/api/v1/projects/{slug}/repository",
            json={"url": url, "generate": {"type": "ed25519"}},
        ),
        200,
        201,
    )
    assert connection.get("private_key") is None  # not asked for: never given
    ok(
        api.post(
            f"{HOST_API}/repositories/{workspace}/{slug}/deploy-keys",
            json={"key": connection["deploy_key"]["public_key"], "label": f"{slug} platform"},
        ),
        200,
        201,
    )
    return dict(connection)
