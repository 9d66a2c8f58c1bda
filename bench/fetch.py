"""Platform fetch vs. raw git over the same server, in the same run (DESIGN.md §7).

    python bench/fetch.py [--rounds 5] [--large 50000] [--small 1000]

The peer is `repolink host serve` (a subprocess) holding two generated repositories (cached
under bench/.work; REPOLINK_BENCH_REPO replaces the large one). Platform operations run in
worker processes that report each operation's own wall time (interpreter start-up is not
counted) and their peak RSS; nothing is shared with the raw-git side. Ratios are medians over
rounds; raw and platform alternate (for the first connect, which goes first alternates too).

- The first connect runs in a fresh worker per round (`--worker connect`), as `repolink repo
  connect` would: its peak RSS is the memory figure.
- Refreshes run in one long-lived worker per repository (`--service`, after one untimed
  refresh), as a platform process refreshes on a webhook or a schedule; a fresh worker per refresh (`repolink fetch` from a
  shell, first use of the database and of the ssh master in that process included) is timed
  too ("cli_*").

Measured (targets of DESIGN.md §7):
- first connect + fetch + index (platform) vs `git clone --mirror` (raw)    target ≤ 1.0
- refresh with nothing new vs `git fetch` in a mirror, in the server           target ≤ 0.1
- refresh with nothing new, a fresh process vs `git fetch` as a process       target ≤ 1.0
- refresh after one new commit vs `git fetch`, small and large repository      target ≤ 1.0
- peak RSS of the platform process during the first connect + index           target ≤ 150 MB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Client, EmbeddedHost
from _repos import generate_bare_repository

WORK = Path(__file__).resolve().parent / ".work"
TARGETS = {"first": 1.0, "noop": 0.1, "cli_noop": 1.0, "one_small": 1.0, "one_large": 1.0}
INFORMATION = ("cli_one_large",)
RSS_TARGET_MB = 150


# -- worker: one platform operation in its own process ----------------------------------------


def service(data_dir: str, project: str) -> None:
    """Refresh ``project`` each time a line arrives on stdin; answer with one JSON line."""
    from repolink.app import Repolink
    from repolink.settings import Settings

    settings = Settings(data_dir=Path(data_dir), git_timeout=1800)
    with Repolink(settings) as app:
        fetches = app.fetches  # opens the store, as before the loop
        for _line in sys.stdin:
            start = time.perf_counter()
            fetched = fetches.fetch_project(project)
            seconds = time.perf_counter() - start
            answer = {"seconds": seconds, "skipped": fetched.skipped}
            answer["new_commits"] = fetched.new_commits
            print(json.dumps(answer), flush=True)


def worker(op: str, data_dir: str, project: str, url: str, key_file: str) -> None:
    from repolink import knownhosts
    from repolink.app import Repolink
    from repolink.git import keyscan
    from repolink.keys import parse_private_key
    from repolink.settings import Settings
    from repolink.urls import parse_ssh_url

    settings = Settings(data_dir=Path(data_dir), git_timeout=1800)
    with Repolink(settings) as app:
        result: dict[str, object] = {}
        if op == "connect":
            parsed = parse_ssh_url(url)
            host, port = parsed.host_port
            with app.store.session() as session:
                for key in keyscan.scan(host, port, runner=app.runner):
                    knownhosts.trust(
                        session,
                        host,
                        port,
                        key.fingerprint,
                        scanner=keyscan.scanner_for(settings, app.runner),
                    )
                    break
            app.projects.create_project(project, slug=project)
            key = parse_private_key(Path(key_file).read_bytes()).key
            start = time.perf_counter()
            outcome = app.connections.connect(project, url, key=key)
            result["seconds"] = time.perf_counter() - start
            if not outcome.ok:
                raise SystemExit(f"connect failed: {outcome.error}")
        else:
            fetches = app.fetches  # opens the store outside the timed fetch, as before
            start = time.perf_counter()
            fetched = fetches.fetch_project(project)
            result["seconds"] = time.perf_counter() - start
            result["skipped"] = fetched.skipped
            result["new_commits"] = fetched.new_commits
    result["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


class Service:
    """A long-lived platform process refreshing one project on request."""

    def __init__(self, data_dir: Path, project: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--service", str(data_dir), project],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def fetch(self) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("fetch\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the service worker exited with {self.proc.wait()}")
        parsed: dict[str, float] = json.loads(line)
        return parsed

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def run_worker(op: str, data_dir: Path, project: str, url: str, key_file: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", op, str(data_dir), project, url, str(key_file)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {op} failed: {done.stderr.strip()[-2000:]}")
    parsed: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed


# -- orchestration ---------------------------------------------------------------------------


def cached_repository(commits: int, env_override: str | None = None) -> Path:
    if env_override and os.environ.get(env_override):
        return Path(os.environ[env_override]).resolve()
    path = WORK / f"linear-{commits}.git"
    if not path.exists():
        print(f"generating a {commits}-commit repository in {path} …", flush=True)
        tmp = path.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        generate_bare_repository(tmp, commits=commits)
        tmp.rename(path)
    return path


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


class Bench:
    def __init__(self, root: Path, rounds: int) -> None:
        self.root = root
        self.rounds = rounds
        self.client = Client.create(root)
        self.host = EmbeddedHost(root / "host")
        self.deploy_key = root / "deploy_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.deploy_key)], check=True
        )
        names = [*TARGETS, *INFORMATION]
        self.ratios: dict[str, list[float]] = {name: [] for name in names}
        self.times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        self.peak_rss_kib = 0

    def publish(self, name: str, source: Path) -> str:
        self.host.cli("host", "repo", "create", f"bench/{name}")
        self.host.cli(
            "host",
            "access-key",
            "add",
            f"bench/{name}",
            f"{self.deploy_key}.pub",
            "--label",
            "platform",
        )
        self.client.git(
            self.host.port,
            "-C",
            str(source),
            "push",
            "--quiet",
            "--mirror",
            self.host.url(f"bench/{name}"),
        )
        return self.host.url(f"bench/{name}")

    def raw(self, *args: str) -> None:
        self.client.git(self.host.port, *args)

    def record(self, name: str, raw_s: float, ours_s: float) -> None:
        self.times[name].append((raw_s, ours_s))
        self.ratios[name].append(ours_s / raw_s)
        print(
            f"  {name:13s} raw {raw_s:7.3f}s  repolink {ours_s:7.3f}s  ratio {ours_s / raw_s:.3f}",
            flush=True,
        )

    def first_connect(self, url: str, label: str) -> None:
        for n in range(self.rounds):
            dest = self.root / f"raw-first-{label}-{n}.git"
            data = self.root / f"platform-first-{label}-{n}"
            # Which goes first alternates: whatever the one before leaves behind (dirty pages
            # being written back, a busier neighbour) weighs on both sides alike.
            if n % 2 == 0:
                raw_s = self.raw_clone(url, dest)
                ours_s = self.platform_connect(url, data)
            else:
                ours_s = self.platform_connect(url, data)
                raw_s = self.raw_clone(url, dest)
            self.record("first", raw_s, ours_s)

    def raw_clone(self, url: str, dest: Path) -> float:
        seconds = timed(self.raw, "clone", "--mirror", "--quiet", url, str(dest))
        shutil.rmtree(dest)
        return seconds

    def platform_connect(self, url: str, data: Path) -> float:
        got = run_worker("connect", data, "bench", url, self.deploy_key)
        self.peak_rss_kib = max(self.peak_rss_kib, int(got["maxrss_kib"]))
        shutil.rmtree(data)
        return got["seconds"]

    def refreshes(self, url: str, label: str, source: Path) -> None:
        raw_mirror = self.root / f"raw-{label}.git"
        self.raw("clone", "--mirror", "--quiet", url, str(raw_mirror))
        data = self.root / f"platform-{label}"
        run_worker("connect", data, "bench", url, self.deploy_key)
        work = self.root / f"work-{label}"
        self.raw("clone", "--quiet", url, str(work))
        service = Service(data, "bench")
        service.fetch()  # untimed: a running server has done its first refresh long ago
        try:
            for n in range(self.rounds):
                self.refresh_round(n, label, service, raw_mirror, work, data, url)
        finally:
            service.stop()

    def raw_fetch(self, raw_mirror: Path) -> float:
        return timed(self.raw, "-C", str(raw_mirror), "fetch", "--quiet", "--prune", "origin")

    def refresh_round(
        self,
        n: int,
        label: str,
        service: Service,
        raw_mirror: Path,
        work: Path,
        data: Path,
        url: str,
    ) -> None:
        raw_s = self.raw_fetch(raw_mirror)
        got = service.fetch()
        assert got["skipped"], "a refresh with nothing new should skip the fetch"
        if label == "large":
            self.record("noop", raw_s, got["seconds"])
            raw_s = self.raw_fetch(raw_mirror)
            got = run_worker("fetch", data, "bench", url, self.deploy_key)
            assert got["skipped"], "a refresh with nothing new should skip the fetch"
            self.record("cli_noop", raw_s, got["seconds"])

        for fresh_process in (False, True) if label == "large" else (False,):
            (work / "bench-change.txt").write_text(f"round {n} {fresh_process}\n")
            self.raw("-C", str(work), "add", "bench-change.txt")
            self.raw(
                "-C",
                str(work),
                "-c",
                "user.name=b",
                "-c",
                "user.email=b@e.invalid",
                "commit",
                "-q",
                "-m",
                f"round {n}",
            )
            self.raw("-C", str(work), "push", "--quiet", "origin", "HEAD:main")
            raw_s = self.raw_fetch(raw_mirror)
            if fresh_process:
                got = run_worker("fetch", data, "bench", url, self.deploy_key)
            else:
                got = service.fetch()
            assert got["new_commits"] == 1, got
            self.record(f"{'cli_' if fresh_process else ''}one_{label}", raw_s, got["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--worker", nargs=5, metavar=("OP", "DATA", "PROJECT", "URL", "KEY"))
    parser.add_argument("--service", nargs=2, metavar=("DATA", "PROJECT"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    if args.service:
        service(*args.service)
        return 0

    WORK.mkdir(exist_ok=True)
    large = cached_repository(args.large, "REPOLINK_BENCH_REPO")
    small = cached_repository(args.small)
    with tempfile.TemporaryDirectory(prefix="fetch-", dir=WORK) as tmp:
        bench = Bench(Path(tmp), args.rounds)
        bench.host.cli(
            "host", "account-key", "add", "bench", f"{bench.client.key}.pub", "--label", "raw"
        )
        bench.host.start()
        try:
            bench.client.trust(bench.host.port)
            large_url = bench.publish("large", large)
            small_url = bench.publish("small", small)
            print("first connect + fetch + index (large):")
            bench.first_connect(large_url, "large")
            print("refreshes (small):")
            bench.refreshes(small_url, "small", small)
            print("refreshes (large):")
            bench.refreshes(large_url, "large", large)
        finally:
            bench.host.stop()

    count = subprocess.run(
        ["git", "--git-dir", str(large), "rev-list", "--all", "--count"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print()
    print(f"large repository: {count} commits; small: {args.small}; rounds: {args.rounds}")
    for name, target in TARGETS.items():
        ratio = statistics.median(bench.ratios[name])
        raw_med = statistics.median(t[0] for t in bench.times[name])
        ours_med = statistics.median(t[1] for t in bench.times[name])
        verdict = "ok" if ratio <= target else "OVER TARGET"
        print(
            f"{name:13s} median raw {raw_med:.3f}s repolink {ours_med:.3f}s ratio {ratio:.3f}  target ≤ {target}  {verdict}"
        )
    for name in INFORMATION:
        ratio = statistics.median(bench.ratios[name])
        raw_med = statistics.median(t[0] for t in bench.times[name])
        ours_med = statistics.median(t[1] for t in bench.times[name])
        print(
            f"{name:13s} median raw {raw_med:.3f}s repolink {ours_med:.3f}s ratio {ratio:.3f}  (a fresh process per refresh; information)"
        )
    rss_mb = bench.peak_rss_kib * 1024 / 1e6
    print(
        f"peak RSS of the platform process (first connect + index): {rss_mb:.0f} MB  target ≤ {RSS_TARGET_MB} MB  {'ok' if rss_mb <= RSS_TARGET_MB else 'OVER TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
