"""`repolink serve` as a platform team runs it, measured over HTTP and git only (DESIGN.md §7).

    python bench/serve.py [--commits 50000] [--pushes 20] [--requests 2000] [--clients 50]
                          [--rounds 15] [--deliveries 100]
                          [--database sqlite|postgresql] [--only MEASURE ...]

One `repolink serve` subprocess (HTTP API, built-in SSH host, job workers) on its own data
directory — its store the embedded SQLite file, or with `--database postgresql` a fresh database
made (and dropped after) on the server of `--postgres-url` (default: the tests' server); a git client with its own key pushes to the built-in host. Two hosted repositories:
`bench/big` (a generated linear history of --commits commits, cached under bench/.work and
shared with bench/fetch.py) and `bench/small`; a platform project connected to each through
the API (generated deploy key, added as an access key through the host API).

Measured (targets of DESIGN.md §7):
- push on the built-in host → commit listed by the API, p50 and p95     target p50 ≤ 0.3 s,
  from the start of `git push`, with no fetch requested                         p95 ≤ 0.6 s
- commit list, first page of 50, big repository, through HTTP: p50 of one client, and
  requests/s with --clients concurrent clients              target p50 ≤ 5 ms, ≥ 1000 req/s
- --deliveries signed webhook deliveries for one repository, sent concurrently within one
  second → fetches run (from the fetch history); each delivery's latency, p50 and p95
                                                                               target ≤ 2
- refresh with nothing new in the server (`POST …/fetch?wait=true`) vs a raw `git fetch`
  process in a mirror of the same repository, alternating, median ratio        target ≤ 0.1
  (also its p95, and the server's CPU time per refresh and per raw fetch)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Client, free_port, wait_for_port
from fetch import WORK, cached_repository

REPOLINK = str(Path(sys.executable).with_name("repolink"))
TOKEN = "bench-serve-admin-token-" + uuid.uuid4().hex
WORKSPACE = "bench"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Serve:
    """`repolink serve` on loopback ports of its own, and an API client for it."""

    def __init__(self, root: Path, workers: int, database_url: str | None = None) -> None:
        self.root = root
        self.http_port = free_port()
        self.ssh_port = free_port()
        self.env = {
            **os.environ,
            "REPOLINK_DATA_DIR": str(root / "data"),
            **({"REPOLINK_DATABASE_URL": database_url} if database_url else {}),
            "REPOLINK_ADMIN_TOKEN": TOKEN,
            # Every bench client comes from 127.0.0.1.
            "REPOLINK_SSH_MAX_STARTUPS": "200",
            "REPOLINK_SSH_MAX_STARTUPS_PER_SOURCE": "200",
        }
        self.log = (root / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [
                REPOLINK,
                "serve",
                "--listen",
                f"127.0.0.1:{self.http_port}",
                "--ssh-listen",
                f"127.0.0.1:{self.ssh_port}",
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.http_port, self.proc, timeout=60)
        wait_for_port(self.ssh_port, self.proc, timeout=60)
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.http = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if not response.is_success:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args)

    def ssh_url(self, slug: str) -> str:
        return f"ssh://git@127.0.0.1:{self.ssh_port}/{WORKSPACE}/{slug}.git"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.http.close()


def set_up(serve: Serve, client: Client, big: Path, root: Path) -> Path:
    """Both hosted repositories and their projects; the working clone of `small`."""
    host = "/host/api/2.0"
    public = (client.key.with_suffix(".pub")).read_text().strip()
    serve.call(
        "POST", f"{host}/workspaces/{WORKSPACE}/ssh-keys", json={"key": public, "label": "bench"}
    )
    client.trust(serve.ssh_port)
    for slug in ("big", "small"):
        serve.call("POST", f"{host}/repositories/{WORKSPACE}/{slug}", json={"scm": "git"})
    print(f"pushing {big.name} to the built-in host …", flush=True)
    client.git(serve.ssh_port, "-C", str(big), "push", "-q", serve.ssh_url("big"), "main:main")
    work = root / "small-work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    commit(work, "first")
    client.git(serve.ssh_port, "-C", str(work), "push", "-q", serve.ssh_url("small"), "main:main")
    trust_host(serve)
    for slug in ("big", "small"):
        connect_project(serve, slug)
        start = time.perf_counter()
        outcome = serve.call("POST", f"/api/v1/projects/{slug}/fetch", params={"wait": "true"})
        if outcome.get("errors"):
            raise RuntimeError(f"first fetch of {slug}: {outcome['errors']}")
        print(f"  {slug}: connected and fetched in {time.perf_counter() - start:.2f} s")
    return work


def run_cli(env: dict[str, str], *args: str) -> str:
    """``repolink ARGS`` with ``env``: its output, or its error as an exception."""
    done = subprocess.run([REPOLINK, *args], env=env, capture_output=True, check=False, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"repolink {' '.join(args)}: {done.stderr}")
    return done.stdout


def trust_host(serve: Any) -> None:
    """The operator trusts the built-in host's key, as it trusts any host: by its fingerprint.
    ``serve``: a :class:`Serve` or anything with its ``cli`` and ``ssh_port``."""
    scanned = serve.cli("hostkeys", "scan", f"127.0.0.1:{serve.ssh_port}", "--json")
    fingerprint = next(
        key["fingerprint"] for key in json.loads(scanned) if "ed25519" in key["key_type"]
    )
    serve.cli("hostkeys", "trust", f"127.0.0.1:{serve.ssh_port}", "--fingerprint", fingerprint)


def connect_project(serve: Any, slug: str) -> None:
    """Project ``slug`` connected to the hosted repository ``bench/slug`` through the API: a
    generated deploy key, added to the repository as an access key through the host API.
    ``serve``: a :class:`Serve` or anything with its ``call`` and ``ssh_url``."""
    serve.call("POST", "/api/v1/projects", json={"name": slug.title(), "slug": slug})
    connection = serve.call(
        "PUT",
        f"/api/v1/projects/{slug}/repository",
        json={"url": serve.ssh_url(slug), "generate": {"type": "ed25519"}},
    )
    serve.call(
        "POST",
        f"/host/api/2.0/repositories/{WORKSPACE}/{slug}/deploy-keys",
        json={"key": connection["deploy_key"]["public_key"], "label": "platform"},
    )


def commit(work: Path, message: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    subprocess.run(
        ["git", "-C", str(work), "commit", "-q", "--allow-empty", "-m", message],
        check=True,
        env=env,
    )
    return subprocess.run(
        ["git", "-C", str(work), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def push_to_listed(serve: Serve, client: Client, work: Path, pushes: int) -> dict[str, float]:
    from_start: list[float] = []
    after_push: list[float] = []
    for n in range(pushes):
        sha = commit(work, f"bench push {n}")
        start = time.perf_counter()
        client.git(
            serve.ssh_port, "-C", str(work), "push", "-q", serve.ssh_url("small"), "main:main"
        )
        pushed = time.perf_counter()
        deadline = start + 30
        while True:
            items = serve.call("GET", "/api/v1/projects/small/commits", params={"limit": 1})[
                "items"
            ]
            if items and items[0]["sha"] == sha:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"commit {sha} not listed 30 s after its push")
            time.sleep(0.005)
        listed = time.perf_counter()
        from_start.append(listed - start)
        after_push.append(listed - pushed)
    return {
        "p50": statistics.median(from_start),
        "p95": percentile(from_start, 0.95),
        "p50_after_push": statistics.median(after_push),
        "p95_after_push": percentile(after_push, 0.95),
    }


def commit_pages(serve: Serve, requests: int, clients: int) -> dict[str, Any]:
    """The first page of 50 of `big`: p50 of one client, then requests/s with --clients
    concurrent clients and the server's CPU time per request meanwhile. The load generator
    shares the machine's cores with the server, so the figures come from Debian's `wrk` when
    it is installed (C, a few percent of a core) and from Python threads (which take much of
    a core themselves) when it is not; `load_generator` says which."""
    path = "/api/v1/projects/big/commits?limit=50"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    page = httpx.get(serve.base + path, headers=headers, timeout=30)
    assert page.status_code == 200 and len(page.json()["items"]) == 50, page.text
    if shutil.which("wrk"):
        return _commit_pages_wrk(serve, path, clients)
    return _commit_pages_python(serve, path, headers, requests, clients)


def _commit_pages_wrk(serve: Serve, path: str, clients: int) -> dict[str, Any]:
    # The token goes in a script, not in wrk's argument list.
    script = serve.root / "commit-page.lua"
    script.write_text(f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n')

    def wrk(connections: int, seconds: int) -> tuple[str, float]:
        argv = ["wrk", "-t", str(min(connections, 2)), "-c", str(connections)]
        # wrk's own 2 s timeout would count a slow answer as an error: the latencies say it.
        argv += ["-d", f"{seconds}s", "--timeout", "60s", "--latency", "-s", str(script)]
        argv.append(serve.base + path)
        before = cpu_seconds(serve.proc.pid)
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(serve.proc.pid) - before
        if "Non-2xx" in out or re.search(r"Socket errors:.*[1-9]", out):
            raise RuntimeError(f"commit pages failed under wrk:\n{out}")
        return out, cpu

    wrk(min(clients, 10), 2)  # warm: connections, caches
    one, _ = wrk(1, 5)
    many, cpu = wrk(clients, 10)
    done = int(_found(r"(\d+) requests in", many)[0])
    return {
        "load_generator": "wrk",
        "p50_ms": _wrk_latency_ms(one, "50%"),
        "p99_ms": _wrk_latency_ms(one, "99%"),
        "requests_per_s": float(_found(r"Requests/sec:\s+([\d.]+)", many)[0]),
        "p50_ms_under_load": _wrk_latency_ms(many, "50%"),
        "server_cpu_ms_per_request": cpu * 1000 / done,
    }


def _wrk_latency_ms(out: str, percent: str) -> float:
    value, unit = _found(rf"{percent}\s+([\d.]+)(us|ms|s)\b", out)
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _found(pattern: str, out: str) -> tuple[str, ...]:
    match = re.search(pattern, out)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in wrk's report:\n{out}")
    return match.groups()


def _commit_pages_python(
    serve: Serve, path: str, headers: dict[str, str], requests: int, clients: int
) -> dict[str, Any]:
    latencies: list[float] = []
    with httpx.Client(base_url=serve.base, headers=headers) as one:
        for _ in range(min(requests, 500)):
            start = time.perf_counter()
            response = one.get(path)
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200

    per_client = max(requests // clients, 1)
    failures: list[int] = []

    def client_loop() -> None:
        with httpx.Client(base_url=serve.base, headers=headers) as mine:
            for _ in range(per_client):
                response = mine.get(path)
                if response.status_code != 200:
                    failures.append(response.status_code)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    before = cpu_seconds(serve.proc.pid)
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(serve.proc.pid) - before
    if failures:
        raise RuntimeError(f"{len(failures)} commit pages failed: {sorted(set(failures))}")
    return {
        "load_generator": "python threads (httpx)",
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "requests_per_s": per_client * clients / elapsed,
        "server_cpu_ms_per_request": cpu * 1000 / (per_client * clients),
    }


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def webhook_burst(serve: Serve, deliveries: int) -> dict[str, float]:
    """--deliveries signed deliveries for `big`, started evenly over one second and sent
    concurrently, each on a connection of its own, as a forge's senders would; the fetches
    they made are counted from the fetch history once none of them waits or runs. The
    server's CPU time per delivery (over the burst; its fetch is due a second after the first
    delivery, and runs git in processes of its own) is what a loaded machine does not skew."""
    shown = json.loads(serve.cli("webhooks", "show", "big", "--reveal-secret", "--json"))
    secret = shown["secret"].encode()
    before = {run["id"] for run in serve.call("GET", "/api/v1/projects/big/fetches")["items"]}
    body = json.dumps({"repository": {"url": serve.ssh_url("big")}}).encode()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    path = "/hooks/generic/big"

    sent: list[tuple[float, float]] = []
    failures: list[str] = []

    def deliver(start: float, n: int) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Repolink-Event": "push",
            "X-Repolink-Signature": signature,
            "X-Repolink-Delivery": f"bench-{uuid.uuid4()}",
        }
        time.sleep(max(start + n / deliveries - time.perf_counter(), 0))
        # A thread and a standard-library connection each: one asyncio client sending all of
        # them measured mostly its own event loop (p50 1.2 s where these threads saw 7 ms).
        connection = http.client.HTTPConnection("127.0.0.1", serve.http_port, timeout=30)
        began = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            status, answer = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"delivery {n}: {exc!r}")
            return
        finally:
            connection.close()
        answered = time.perf_counter()
        if status != 202 or json.loads(answer)["outcome"] != "queued":
            failures.append(f"delivery {n}: {status} {answer!r}")
        sent.append((began - start, answered - began))

    cpu_before = cpu_seconds(serve.proc.pid)
    start = time.perf_counter()
    threads = [threading.Thread(target=deliver, args=(start, n)) for n in range(deliveries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered_in = time.perf_counter() - start
    server_cpu = cpu_seconds(serve.proc.pid) - cpu_before
    if failures:
        raise RuntimeError(f"{len(failures)} deliveries failed, first: {failures[0]}")
    latencies = [latency for _, latency in sent]
    # Let what was queued run to its end before counting.
    deadline = time.perf_counter() + 120
    while True:
        runs = [
            run
            for run in serve.call("GET", "/api/v1/projects/big/fetches")["items"]
            if run["id"] not in before
        ]
        if all(run["state"] not in ("queued", "running") for run in runs) or (
            time.perf_counter() > deadline
        ):
            break
        time.sleep(0.1)
    return {
        "sent_within_s": max(at for at, _ in sent),
        "answered_within_s": answered_in,
        "latency_p50_ms": statistics.median(latencies) * 1000,
        "latency_p95_ms": percentile(latencies, 0.95) * 1000,
        "server_cpu_ms_per_delivery": server_cpu * 1000 / deliveries,
        "fetches": len(runs),
    }


def noop_refresh(serve: Serve, client: Client, root: Path, rounds: int) -> dict[str, float]:
    """Alternating rounds: a raw `git fetch` in a mirror of `small` through the built-in host,
    then the server's refresh of its project. Also the server's CPU time per refresh (the
    built-in host's side of the ref listing included) and per raw fetch (the host's side of
    the raw fetch: its SSH handshake and git-upload-pack), and a check that the history
    records every refresh as a finished run with nothing new."""
    mirror = root / "raw-small.git"
    client.git(serve.ssh_port, "clone", "-q", "--mirror", serve.ssh_url("small"), str(mirror))
    ours: list[float] = []
    raw: list[float] = []
    ratios: list[float] = []
    ours_cpu = raw_cpu = 0.0
    run_ids: list[int] = []
    serve.call("POST", "/api/v1/projects/small/fetch", params={"wait": "true"})  # warm
    for _ in range(rounds):
        cpu = cpu_seconds(serve.proc.pid)
        start = time.perf_counter()
        client.git(serve.ssh_port, "-C", str(mirror), "fetch", "-q", "--prune", "origin")
        raw_s = time.perf_counter() - start
        raw_cpu += cpu_seconds(serve.proc.pid) - cpu
        cpu = cpu_seconds(serve.proc.pid)
        start = time.perf_counter()
        outcome = serve.call("POST", "/api/v1/projects/small/fetch", params={"wait": "true"})
        ours_s = time.perf_counter() - start
        ours_cpu += cpu_seconds(serve.proc.pid) - cpu
        if outcome.get("errors") or outcome.get("new_commits"):
            raise RuntimeError(f"a no-op refresh did something: {outcome}")
        run_ids.append(outcome["fetch"]["id"])
        ours.append(ours_s)
        raw.append(raw_s)
        ratios.append(ours_s / raw_s)
    history = serve.call(
        "GET", "/api/v1/projects/small/fetches", params={"limit": min(rounds + 5, 200)}
    )["items"]
    recorded = {run["id"]: run for run in history}
    for run_id in run_ids[-min(rounds, 195) :]:
        run = recorded.get(run_id)
        if run is None or run["state"] != "done" or run["new_commits"] != 0:
            raise RuntimeError(f"the history does not record refresh run {run_id}: {run}")
    return {
        "server_ms": statistics.median(ours) * 1000,
        "server_p95_ms": percentile(ours, 0.95) * 1000,
        "raw_git_fetch_ms": statistics.median(raw) * 1000,
        "ratio": statistics.median(ratios),
        "server_cpu_ms_per_refresh": ours_cpu * 1000 / rounds,
        "server_cpu_ms_per_raw_fetch": raw_cpu * 1000 / rounds,
    }


MEASURES = ("push", "commit-page", "webhooks", "refresh")
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (repolink migrates it), dropped at the end: its
    ``postgresql+psycopg://`` URL."""
    import psycopg
    from psycopg import sql

    name = f"repolink_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    password = f":{info['password']}" if info.get("password") else ""
    host, port = info.get("host") or "127.0.0.1", info.get("port") or 5432
    try:
        yield f"postgresql+psycopg://{info.get('user') or 'postgres'}{password}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=50_000)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--deliveries", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("TEST_POSTGRES_URL") or POSTGRES_URL
    )
    parser.add_argument("--only", nargs="+", choices=MEASURES, default=list(MEASURES))
    args = parser.parse_args()

    big = cached_repository(args.commits, "REPOLINK_BENCH_REPO")
    WORK.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        database_url = None
        if args.database == "postgresql":
            database_url = stack.enter_context(fresh_postgres_database(args.postgres_url))
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-", dir=WORK)))
        client = Client.create(root)
        serve = Serve(root, args.workers, database_url)
        try:
            work = set_up(serve, client, big, root)
            figures: dict[str, Any] = {"database": args.database}
            if "push" in args.only:
                figures["push_to_listed_s"] = push_to_listed(serve, client, work, args.pushes)
            if "commit-page" in args.only:
                figures["commit_page_big"] = commit_pages(serve, args.requests, args.clients)
            if "webhooks" in args.only:
                figures["webhook_burst"] = webhook_burst(serve, args.deliveries)
            if "refresh" in args.only:
                figures["noop_refresh"] = noop_refresh(serve, client, root, args.rounds)
        finally:
            serve.stop()
    print(json.dumps(figures, indent=2))
    report(figures, args)
    return 0


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"database: {figures['database']}")
    if push := figures.get("push_to_listed_s"):
        print(
            f"push → listed          p50 {push['p50']:.3f} s  p95 {push['p95']:.3f} s"
            f"   (targets 0.3 / 0.6 s)"
        )
    if page := figures.get("commit_page_big"):
        print(
            f"commit page ({args.commits} commits)  p50 {page['p50_ms']:.1f} ms  "
            f"{page['requests_per_s']:.0f} req/s with {args.clients} clients "
            f"({page['load_generator']}; server CPU {page['server_cpu_ms_per_request']:.2f} ms/request)"
            f"   (targets 5 ms, 1000 req/s)"
        )
    if burst := figures.get("webhook_burst"):
        print(
            f"{args.deliveries} webhooks sent within {burst['sent_within_s']:.2f} s, answered "
            f"within {burst['answered_within_s']:.2f} s (p50 {burst['latency_p50_ms']:.1f} ms, "
            f"p95 {burst['latency_p95_ms']:.1f} ms; server CPU "
            f"{burst['server_cpu_ms_per_delivery']:.1f} ms each) → {burst['fetches']:.0f} fetches"
            f"   (target ≤ 2)"
        )
    if refresh := figures.get("noop_refresh"):
        print(
            f"no-op refresh in the server {refresh['server_ms']:.1f} ms (p95 "
            f"{refresh['server_p95_ms']:.1f} ms; server CPU {refresh['server_cpu_ms_per_refresh']:.1f}"
            f" ms each, {refresh['server_cpu_ms_per_raw_fetch']:.1f} ms per raw fetch) vs raw git "
            f"fetch {refresh['raw_git_fetch_ms']:.1f} ms: ratio {refresh['ratio']:.2f}"
            f"   (target ≤ 0.1)"
        )


if __name__ == "__main__":
    sys.exit(main())
