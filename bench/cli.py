"""CLI start-up: `repolink` commands as processes, and a no-op `repolink fetch` against a raw
`git fetch` of the same repository over the same server, in the same run (DESIGN.md §7).

    python bench/cli.py [--rounds 10] [--commits 1000] [--tags 0] [--server embedded|openssh]

The server is `repolink host serve` (a subprocess) holding one generated repository (cached
under bench/.work, shared with bench/fetch.py; REPOLINK_BENCH_REPO replaces it), or with
`--server openssh` a plain OpenSSH sshd serving a bare copy of it (root needed). A git/git-sized
repository: `--commits 85000 --tags 900`. Every figure
is a whole process, as a person at a shell waits for it: interpreter start-up, imports, opening
the store and, for the fetch, the SSH connection. Raw and repolink alternate in every round;
figures are medians over rounds, wall time and CPU time (user + system, children included),
which a busy machine disturbs less.

Measured (targets of DESIGN.md §7):
- `repolink --help`, `repolink --version`                                   information
- `repolink project list`, `repolink commits bench` (first page)             target ≤ 0.2 s wall
- `repolink fetch P` with nothing new vs `git fetch` in a mirror, both processes
                                                                             target ≤ 1.0 ratio
  (warm: the shared SSH connection of the fetch before is alive, as it is for a minute
  after every fetch; cold: none is, and the fetch opens one — information)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Client, OpenSSHServer
from _repos import add_annotated_tags
from fetch import WORK, Bench, cached_repository, run_worker

REPOLINK = str(Path(sys.executable).with_name("repolink"))
READ_TARGET_S = 0.2
FETCH_RATIO_TARGET = 1.0


def process_time(argv: list[str], env: Mapping[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one process, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=dict(env), capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def cold(run: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """``run`` after the shared SSH connections of every data directory here are closed (not
    timed): a fetch that finds none, as one run over a minute after the last does."""
    for socket in WORK.glob("cli-*/**/ssh-control/*/s"):
        subprocess.run(
            ["ssh", "-F", "/dev/null", "-o", f"ControlPath={socket}", "-O", "exit", "x"],
            capture_output=True,
        )
    return run()


class Figures:
    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[float, float]]] = {}

    def add(self, name: str, sample: tuple[float, float]) -> None:
        self.samples.setdefault(name, []).append(sample)

    def wall(self, name: str) -> float:
        return statistics.median(s[0] for s in self.samples[name])

    def cpu(self, name: str) -> float:
        return statistics.median(s[1] for s in self.samples[name])

    def ratio(self, ours: str, raw: str) -> float:
        pairs = zip(self.samples[ours], self.samples[raw], strict=True)
        return statistics.median(o[0] / r[0] for o, r in pairs)


def measure(raw_env: Mapping[str, str], data: Path, raw_mirror: Path, rounds: int) -> Figures:
    env = {**os.environ, "REPOLINK_DATA_DIR": str(data)}
    commands: dict[str, Callable[[], tuple[float, float]]] = {
        "--help": lambda: process_time([REPOLINK, "--help"], env),
        "--version": lambda: process_time([REPOLINK, "--version"], env),
        "project list": lambda: process_time([REPOLINK, "project", "list"], env),
        "commits list": lambda: process_time([REPOLINK, "commits", "bench"], env),
        "fetch (no-op)": lambda: process_time([REPOLINK, "fetch", "bench"], env),
        "fetch (no-op, cold)": lambda: cold(
            lambda: process_time([REPOLINK, "fetch", "bench"], env)
        ),
        "git fetch (raw)": lambda: process_time(
            ["git", "-C", str(raw_mirror), "fetch", "--quiet", "--prune", "origin"], raw_env
        ),
    }
    for run in commands.values():  # untimed: caches warm, the mirror and store up to date
        run()
    figures = Figures()
    for n in range(rounds):
        order = list(commands.items())
        if n % 2:  # whatever the one before leaves behind weighs on both sides alike
            order.reverse()
        for name, run in order:
            figures.add(name, run())
    return figures


def report(figures: Figures, rounds: int, commits: str) -> None:
    print(f"repository: {commits}; rounds: {rounds}; medians, whole processes")
    for name in figures.samples:
        print(f"  {name:16s} wall {figures.wall(name):6.3f}s  cpu {figures.cpu(name):6.3f}s")
    for read in ("project list", "commits list"):
        listed = figures.wall(read)
        verdict = "ok" if listed <= READ_TARGET_S else "OVER TARGET"
        print(f"{read:16s} wall {listed:.3f}s  target ≤ {READ_TARGET_S} s  {verdict}")
    ratio = figures.ratio("fetch (no-op)", "git fetch (raw)")
    verdict = "ok" if ratio <= FETCH_RATIO_TARGET else "OVER TARGET"
    print(f"fetch no-op / git fetch  ratio {ratio:.3f}  target ≤ {FETCH_RATIO_TARGET}  {verdict}")
    cold_ratio = figures.ratio("fetch (no-op, cold)", "git fetch (raw)")
    print(f"  the same with no shared connection left (cold)  ratio {cold_ratio:.3f}")


def _over_embedded_host(root: Path, source: Path, rounds: int) -> Figures:
    bench = Bench(root, rounds)
    bench.host.cli(
        "host", "account-key", "add", "bench", f"{bench.client.key}.pub", "--label", "raw"
    )
    bench.host.start()
    try:
        bench.client.trust(bench.host.port)
        url = bench.publish("repo", source)
        raw_mirror = bench.root / "raw.git"
        bench.raw("clone", "--mirror", "--quiet", url, str(raw_mirror))
        data = bench.root / "platform"
        run_worker("connect", data, "bench", url, bench.deploy_key)
        return measure(bench.client.env(bench.host.port), data, raw_mirror, rounds)
    finally:
        bench.host.stop()


def _over_openssh(root: Path, source: Path, rounds: int) -> Figures:
    """The same figures against a plain OpenSSH sshd serving a bare copy of ``source`` (as
    the issue measured git/git), the client's key being the project's deploy key too."""
    client = Client.create(root)
    sshd = OpenSSHServer(root / "sshd", client)
    try:
        client.trust(sshd.port)
        served = root / "served.git"
        shutil.copytree(source, served)
        url = sshd.url(served)
        raw_mirror = root / "raw.git"
        client.git(sshd.port, "clone", "--mirror", "--quiet", url, str(raw_mirror))
        data = root / "platform"
        run_worker("connect", data, "bench", url, client.key)
        return measure(client.env(sshd.port), data, raw_mirror, rounds)
    finally:
        sshd.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--commits", type=int, default=1_000)
    parser.add_argument(
        "--tags",
        type=int,
        default=0,
        help="annotated tags over the history (git/git: --commits 85000 --tags 900)",
    )
    parser.add_argument(
        "--server",
        choices=("embedded", "openssh"),
        default="embedded",
        help="the server both fetch from: repolink's host, or a plain sshd (needs root)",
    )
    args = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    source = cached_repository(args.commits, "REPOLINK_BENCH_REPO")
    if args.tags and not os.environ.get("REPOLINK_BENCH_REPO"):
        tagged = WORK / f"linear-{args.commits}-tags-{args.tags}.git"
        if not tagged.exists():
            print(f"adding {args.tags} annotated tags in {tagged} …", flush=True)
            tmp = tagged.with_suffix(".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
            add_annotated_tags(tmp, args.tags)
            tmp.rename(tagged)
        source = tagged
    with tempfile.TemporaryDirectory(prefix="cli-", dir=WORK) as tmp:
        if args.server == "openssh":
            figures = _over_openssh(Path(tmp), source, args.rounds)
        else:
            figures = _over_embedded_host(Path(tmp), source, args.rounds)
    commits = subprocess.run(
        ["git", "--git-dir", str(source), "rev-list", "--all", "--count"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    refs = subprocess.run(
        ["git", "--git-dir", str(source), "for-each-ref", "--format=x"],
        capture_output=True,
        text=True,
    ).stdout.count("x")
    commits = f"{commits} commits, {refs} refs"
    report(figures, args.rounds, commits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
