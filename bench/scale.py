"""Many processes on one PostgreSQL: fetch jobs per second by 1, 2 and 4 workers (DESIGN.md §7).

    python bench/scale.py [--repositories 200] [--workers 1,2,4] [--concurrency 1]
                          [--webhooks 20] [--webhook-gather 0] [--database-url URL]
                          [--keep] [--worker-log-level info]

The processes a deployment runs (docs/deploy.md), all real, all on this machine, sharing one
fresh PostgreSQL database (created on --database-url's server and dropped at the end), the
master key and nothing else — each has its own data directory:

- API 1: `repolink serve --no-workers` with the built-in SSH host, which holds the hosted
  repositories (`bench/r000` …) and serves every fetch;
- API 2: `repolink serve --no-workers --ssh-listen off`;
- N `repolink worker --concurrency C` processes (C = --concurrency, default 1: N workers run N
  fetches at once). A worker keeps its data directory (its mirrors) from one round to the next.

Each project is connected to one hosted repository through the API (a generated deploy key,
added as an access key through the host API). A new commit is written straight into the
hosted repository's bare directory (no push through the SSH host, so nothing queues a fetch
but the bench), then:

- per worker count N: one new commit in every repository, an unmeasured pass (every worker
  up, its connections warm), one more new commit in every repository, and the measured pass:
  a fetch of every project requested through both API processes at once (8 clients). Jobs
  per second = repositories / (last run finished − first run started), from the runs'
  records; the speed-up against one worker; queue latency (requested → started) of those runs,
  p50/p95 — under a burst of --repositories jobs, so mostly the backlog; and the CPU the pass
  used: machine-wide (every core, other load on the machine included), of the workers (their
  git and ssh children reaped counted) and of the API processes (API 1's SSH host runs the
  server side of every fetch), in cores.
- webhook → commit listed across processes: with the last round's workers, --webhooks times
  a new commit in one repository, a signed generic webhook sent to one API process and the
  commit polled for on the other; p50/p95, and the queue latency of those fetches (one job at
  a time: the latency of an idle queue). REPOLINK_WEBHOOK_GATHER is --webhook-gather (default
  0: the fetch is due at once; a deployment's default of 1 s gathers a burst into one fetch
  and adds that second here).

Prints figures; asserts nothing. --keep keeps the processes' logs and the database (for a
timeline of the runs and jobs: the workers log each job's start and end at ``info``).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import free_port, hosted_repository_dir, wait_for_port
from fetch import WORK
from serve import WORKSPACE, connect_project, run_cli, trust_host

REPOLINK = str(Path(sys.executable).with_name("repolink"))
TOKEN = "bench-scale-admin-token-" + uuid.uuid4().hex
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def process_cpu(pid: int) -> float:
    """CPU seconds of a running process: its threads and its reaped children (git, ssh)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core summed."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / tick, sum(values[:8]) / tick


class Database:
    """A fresh PostgreSQL database on --database-url's server, dropped by :meth:`drop`."""

    def __init__(self, server_url: str) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        self.name = f"repolink_bench_scale_{uuid.uuid4().hex[:12]}"
        server = make_url(server_url)
        self._admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(self._admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        self.url = server.set(database=self.name).render_as_string(hide_password=False)

    def backend_cpu(self) -> dict[int, float]:
        """CPU seconds so far of each PostgreSQL backend serving this database, by pid."""
        import psycopg

        with psycopg.connect(self._admin, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)
            ).fetchall()
        cpu: dict[int, float] = {}
        for (pid,) in rows:
            try:
                cpu[pid] = process_cpu(pid)
            except OSError:  # ended meanwhile, or another machine's
                continue
        return cpu

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self._admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Process:
    """One repolink process of the deployment, on a data directory of its own."""

    def __init__(self, root: Path, name: str, env: dict[str, str], argv: list[str]) -> None:
        data = root / name
        data.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.data = data
        self.env = {**env, "REPOLINK_DATA_DIR": str(data)}
        self._argv = argv
        self._log = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REPOLINK, *self._argv],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._log.open("ab"),
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Api(Process):
    """`repolink serve --no-workers` on loopback ports, and an API client for it."""

    def __init__(self, root: Path, name: str, env: dict[str, str], *, ssh: bool) -> None:
        self.http_port = free_port()
        self.ssh_port = free_port() if ssh else None
        argv = ["serve", "--no-workers", "--listen", f"127.0.0.1:{self.http_port}"]
        argv += ["--ssh-listen", f"127.0.0.1:{self.ssh_port}" if ssh else "off"]
        super().__init__(root, name, env, [*argv, "--log-level", "warning"])
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.http = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
        )

    def start(self) -> None:
        super().start()
        assert self.proc is not None
        wait_for_port(self.http_port, self.proc, timeout=60)
        if self.ssh_port is not None:
            wait_for_port(self.ssh_port, self.proc, timeout=60)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if not response.is_success:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def ssh_url(self, slug: str) -> str:
        return f"ssh://git@127.0.0.1:{self.ssh_port}/{WORKSPACE}/{slug}.git"


def git(*args: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **GIT_IDENTITY}
    done = subprocess.run(["git", *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def new_commit(bare: Path, message: str) -> str:
    """A new commit on `main` of a hosted repository, written in its directory: the SSH host
    sees no push, so nothing but the bench asks for a fetch."""
    parent = git("-C", str(bare), "rev-parse", "-q", "--verify", "refs/heads/main^{commit}")
    tree = git("-C", str(bare), "rev-parse", "refs/heads/main^{tree}")
    sha = git("-C", str(bare), "commit-tree", tree, "-p", parent, "-m", message)
    git("-C", str(bare), "update-ref", "refs/heads/main", sha, parent)
    return sha


def first_commit(bare: Path) -> None:
    tree = git("-C", str(bare), "hash-object", "-t", "tree", "-w", "--stdin")
    sha = git("-C", str(bare), "commit-tree", tree, "-m", "first")
    git("-C", str(bare), "update-ref", "refs/heads/main", sha)
    git("-C", str(bare), "symbolic-ref", "HEAD", "refs/heads/main")


def in_parallel(
    function: Callable[[Any], Any], items: Iterable[Any], threads: int = 8
) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(function, items))


def set_up(host: Api, slugs: list[str]) -> dict[str, Path]:
    """The hosted repositories with one commit each, their projects connected; the bare
    directory of each project's repository."""
    trust_host(host)

    def one(slug: str) -> tuple[str, Path]:
        repository = host.call(
            "POST", f"/host/api/2.0/repositories/{WORKSPACE}/{slug}", json={"scm": "git"}
        )
        repository_id = uuid.UUID(repository["uuid"].strip("{}")).hex
        bare = hosted_repository_dir(host.env, repository_id)
        first_commit(bare)
        connect_project(host, slug)
        return slug, bare

    return dict(in_parallel(one, slugs))


def mirror_count(worker: Process) -> int:
    """The mirrors a worker holds: the connections it has fetched at least once."""
    return sum(1 for _ in (worker.data / "mirrors").glob("*.git"))


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def fetch_all(apis: list[Api], slugs: list[str], timeout: float = 600) -> list[dict[str, Any]]:
    """Request a fetch of every project, alternating the API processes, 8 clients at once;
    the runs' records once every run has finished."""

    def request(item: tuple[int, str]) -> tuple[str, int]:
        n, slug = item
        run = apis[n % len(apis)].call("POST", f"/api/v1/projects/{slug}/fetch")
        return slug, run["id"]

    requested = in_parallel(request, list(enumerate(slugs)))
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    for slug, run_id in requested:
        while True:
            run = apis[0].call("GET", f"/api/v1/projects/{slug}/fetches/{run_id}")
            if run["state"] not in ("queued", "running"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"fetch run {run_id} of {slug} not finished after {timeout}s")
            time.sleep(0.2)
        if run["state"] != "done" or run["new_commits"] < 1:
            raise RuntimeError(f"fetch of {slug}: {run}")
        runs.append(run)
    return runs


def workers_pass(
    database: Database,
    apis: list[Api],
    workers: list[Process],
    bares: dict[str, Path],
    label: str,
) -> dict[str, float]:
    """One new commit everywhere, then every project fetched; the pass's figures."""
    in_parallel(lambda item: new_commit(item[1], f"{label} {item[0]}"), bares.items())
    mirrors = sum(mirror_count(worker) for worker in workers)
    backends = database.backend_cpu()
    busy, total = machine_cpu()
    cpu_workers = sum(process_cpu(w.pid) for w in workers)
    cpu_apis = sum(process_cpu(a.pid) for a in apis)
    wall = time.perf_counter()
    runs = fetch_all(apis, list(bares))
    wall = time.perf_counter() - wall
    busy_after, total_after = machine_cpu()
    cpu_workers = sum(process_cpu(w.pid) for w in workers) - cpu_workers
    cpu_apis = sum(process_cpu(a.pid) for a in apis) - cpu_apis
    # A backend that ended during the pass is not counted: the figure is a lower bound.
    cpu_database = sum(cpu - backends.get(pid, 0.0) for pid, cpu in database.backend_cpu().items())
    # A fetch that made a mirror ran on a worker that had never fetched its connection: a
    # clone of the whole repository rather than the new commit (no affinity, see the report).
    cold = sum(mirror_count(worker) for worker in workers) - mirrors
    started = [parse_time(run["started_at"]) for run in runs]
    finished = [parse_time(run["finished_at"]) for run in runs]
    waited = [s - parse_time(run["requested_at"]) for s, run in zip(started, runs, strict=True)]
    span = max(finished) - min(started)
    cores = os.cpu_count() or 1
    ours = cpu_workers + cpu_apis + cpu_database
    machine = (busy_after - busy) / (total_after - total) * cores
    return {
        "jobs_per_s": len(runs) / span,
        "span_s": span,
        "fetch_s_p50": statistics.median(run["duration"] for run in runs),
        "cold_mirrors": cold,
        "queue_latency_p50_s": statistics.median(waited),
        "queue_latency_p95_s": percentile(waited, 0.95),
        "machine_cores_busy": machine,
        "worker_cores": cpu_workers / wall,
        "api_cores": cpu_apis / wall,
        "postgres_cores": cpu_database / wall,
        "other_cores": max(machine - ours / wall, 0.0),
        "worker_cpu_ms_per_job": cpu_workers * 1000 / len(runs),
        "api_cpu_ms_per_job": cpu_apis * 1000 / len(runs),
        "postgres_cpu_ms_per_job": cpu_database * 1000 / len(runs),
        # Jobs per second if the deployment had every core to itself.
        "cpu_ceiling_jobs_per_s": cores * len(runs) / ours,
    }


def webhook_to_listed(
    apis: list[Api], host: Api, bares: dict[str, Path], rounds: int, workers: list[Process]
) -> dict[str, float]:
    """A new commit, a signed generic webhook to one API process, the commit polled for on
    the other: seconds from the webhook's sending to the commit's listing. One fetch at a
    time, as a steady trickle of pushes: the fetches that had to build a mirror are those
    affinity (docs/deploy.md) did not send to the worker holding it."""
    mirrors = sum(mirror_count(worker) for worker in workers)
    slugs = list(bares)[:rounds]
    secrets_by_slug = {
        slug: json.loads(host.cli("webhooks", "show", slug, "--reveal-secret", "--json"))[
            "secret"
        ].encode()
        for slug in slugs
    }
    latencies: list[float] = []
    waited: list[float] = []
    for n in range(rounds):
        slug = slugs[n % len(slugs)]
        sender, reader = apis[n % 2], apis[(n + 1) % 2]
        sha = new_commit(bares[slug], f"webhook {n}")
        body = json.dumps({"repository": {"url": host.ssh_url(slug)}}).encode()
        signature = hmac.new(secrets_by_slug[slug], body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Repolink-Event": "push",
            "X-Repolink-Signature": f"sha256={signature}",
            "X-Repolink-Delivery": f"bench-{uuid.uuid4()}",
        }
        start = time.perf_counter()
        answer = httpx.post(f"{sender.base}/hooks/generic/{slug}", content=body, headers=headers)
        if answer.status_code != 202:
            raise RuntimeError(f"webhook {n}: {answer.status_code} {answer.text}")
        deadline = start + 60
        while True:
            items = reader.call("GET", f"/api/v1/projects/{slug}/commits", params={"limit": 1})
            if items["items"] and items["items"][0]["sha"] == sha:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"commit {sha} of {slug} not listed 60 s after its webhook")
            time.sleep(0.005)
        latencies.append(time.perf_counter() - start)
        run = reader.call("GET", f"/api/v1/projects/{slug}/fetches", params={"limit": 1})
        last = run["items"][0]
        waited.append(parse_time(last["started_at"]) - parse_time(last["requested_at"]))
    return {
        "cold_mirrors": sum(mirror_count(worker) for worker in workers) - mirrors,
        "p50_s": statistics.median(latencies),
        "p95_s": percentile(latencies, 0.95),
        "queue_latency_p50_s": statistics.median(waited),
        "queue_latency_p95_s": percentile(waited, 0.95),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repositories", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at once per worker")
    parser.add_argument("--webhooks", type=int, default=20)
    parser.add_argument("--webhook-gather", default="0")
    parser.add_argument(
        "--keep", action="store_true", help="keep the processes' logs and the database"
    )
    parser.add_argument("--worker-log-level", default="info", help="the workers' --log-level")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("REPOLINK_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help="a database on the PostgreSQL server to use (the bench makes its own there)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    database = Database(args.database_url)
    WORK.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="scale-", dir=WORK))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")},
        "REPOLINK_DATABASE_URL": database.url,
        "REPOLINK_SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "REPOLINK_ADMIN_TOKEN": TOKEN,
        # Every process is on 127.0.0.1: the host the projects fetch from included.
        "REPOLINK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "REPOLINK_SSH_MAX_STARTUPS": "400",
        "REPOLINK_SSH_MAX_STARTUPS_PER_SOURCE": "400",
        "REPOLINK_WEBHOOK_GATHER": args.webhook_gather,
    }
    host = Api(root, "api-1", env, ssh=True)
    other = Api(root, "api-2", env, ssh=False)
    apis = [host, other]
    workers = [
        Process(
            root,
            f"worker-{k}",
            env,
            ["worker", "--concurrency", str(args.concurrency), "--log-level", args.worker_log_level],
        )
        for k in range(max(counts))
    ]
    figures: dict[str, Any] = {"workers": {}}
    failed = True
    try:
        host.cli("admin", "migrate")
        for api in apis:
            api.start()
        slugs = [f"r{n:03d}" for n in range(args.repositories)]
        print(f"{len(slugs)} repositories and projects …", flush=True)
        bares = set_up(host, slugs)
        for count in counts:
            for worker in workers[:count]:
                if worker.proc is None:
                    worker.start()
            for worker in workers[count:]:
                worker.stop()
            print(f"{count} worker(s): warm pass …", flush=True)
            workers_pass(database, apis, workers[:count], bares, f"warm {count}")
            figures["workers"][count] = workers_pass(
                database, apis, workers[:count], bares, f"pass {count}"
            )
            print(f"  {figures['workers'][count]['jobs_per_s']:.1f} jobs/s", flush=True)
        print("webhook → listed …", flush=True)
        figures["webhook_to_listed"] = webhook_to_listed(
            apis, host, bares, args.webhooks, workers[: counts[-1]]
        )
        failed = False
    finally:
        for process in [*workers, *apis]:
            process.stop()
        if args.keep:
            print(f"kept: the processes' logs in {root}, database {database.name}", file=sys.stderr)
        else:
            database.drop()
        if failed or args.keep:
            print(f"the processes' logs are kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    figures["cores"] = os.cpu_count()
    figures["concurrency_per_worker"] = args.concurrency
    print(json.dumps(figures, indent=2))
    base = figures["workers"][counts[0]]["jobs_per_s"] / counts[0]
    previous: float | None = None
    for count in counts:
        row = figures["workers"][count]
        step = "" if previous is None else f", ×{row['jobs_per_s'] / previous:.2f} on the step"
        previous = row["jobs_per_s"]
        print(
            f"{count} worker(s) × {args.concurrency}: {row['jobs_per_s']:6.1f} jobs/s"
            f"  (speed-up ×{row['jobs_per_s'] / base:.2f}{step})"
            f"  queue latency p50 {row['queue_latency_p50_s']:.2f} s p95 "
            f"{row['queue_latency_p95_s']:.2f} s  fetch p50 {row['fetch_s_p50'] * 1000:.0f} ms"
            f" ({row['cold_mirrors']} on a worker without its mirror)"
        )
        print(
            f"    CPU in cores: machine {row['machine_cores_busy']:.2f} of {figures['cores']}"
            f" (workers {row['worker_cores']:.2f}, API processes and SSH host"
            f" {row['api_cores']:.2f}, PostgreSQL {row['postgres_cores']:.2f}, everything else"
            f" {row['other_cores']:.2f}); per job {row['worker_cpu_ms_per_job']:.0f} +"
            f" {row['api_cpu_ms_per_job']:.0f} + {row['postgres_cpu_ms_per_job']:.0f} ms:"
            f" ceiling {row['cpu_ceiling_jobs_per_s']:.1f} jobs/s on {figures['cores']} free cores"
        )
    hook = figures["webhook_to_listed"]
    print(
        f"webhook → commit listed on the other API process: p50 {hook['p50_s']:.3f} s"
        f"  p95 {hook['p95_s']:.3f} s  (queue latency, idle: p50 "
        f"{hook['queue_latency_p50_s'] * 1000:.0f} ms p95 {hook['queue_latency_p95_s'] * 1000:.0f}"
        f" ms; gather {args.webhook_gather} s; {hook['cold_mirrors']} of {args.webhooks}"
        f" fetches on a worker without the mirror)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
