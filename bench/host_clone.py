"""Clone through the embedded SSH host vs. the same clone through OpenSSH sshd (DESIGN.md §7).

    python bench/host_clone.py [--rounds 7] [--commits 20000]

The repository is generated with `git fast-import` (cached under bench/.work), or taken from
REPOLINK_BENCH_REPO (any local repository), pushed to the embedded host and repacked there with
a bitmap; sshd then serves that very directory, so both servers send the same pack from the same
files and only the SSH server differs. Both servers run in this process's run, and clones
alternate between them, so machine noise hits both alike; the result is the median of the
per-round ratios. Also prints the host server's peak RSS and runs 32 parallel clones of a small
repository through the embedded host.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Client, EmbeddedHost, OpenSSHServer, peak_rss_kib
from _repos import generate_bare_repository

WORK = Path(__file__).resolve().parent / ".work"
TARGET_RATIO = 1.0  # DESIGN.md §7: no slower than the same clone through OpenSSH sshd


def source_repository(commits: int) -> Path:
    given = os.environ.get("REPOLINK_BENCH_REPO")
    if given:
        return Path(given).resolve()
    cached = WORK / f"linear-{commits}.git"
    if not cached.exists():
        print(f"generating a {commits}-commit repository in {cached} …", flush=True)
        generate_bare_repository(cached.with_suffix(".tmp"), commits=commits)
        cached.with_suffix(".tmp").rename(cached)
    return cached


def timed_clone(client: Client, port: int, url: str, dest: Path) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    start = time.perf_counter()
    client.git(port, "clone", "--bare", "--quiet", url, str(dest))
    return time.perf_counter() - start


def parallel_clones(client: Client, host: EmbeddedHost, root: Path, count: int) -> int:
    def one(n: int) -> bool:
        try:
            client.git(host.port, "clone", "--quiet", host.url("bench/small"), str(root / f"p{n}"))
        except subprocess.CalledProcessError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=count) as pool:
        return sum(1 for ok in pool.map(one, range(count)) if not ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--parallel", type=int, default=32)
    args = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    source = source_repository(args.commits)
    with tempfile.TemporaryDirectory(prefix="host-clone-", dir=WORK) as tmp:
        root = Path(tmp)
        client = Client.create(root)
        sshd = OpenSSHServer(root / "sshd", client)
        host = EmbeddedHost(root / "host")
        try:
            big = json.loads(host.cli("host", "repo", "create", "bench/big", "--json"))
            host.cli("host", "repo", "create", "bench/small")
            host.cli(
                "host", "account-key", "add", "bench", str(client.key) + ".pub", "--label", "bench"
            )
            host.start()
            assert host.proc is not None
            client.trust(sshd.port)
            client.trust(host.port)

            client.git(
                host.port, "-C", str(source), "push", "--quiet", "--mirror", host.url("bench/big")
            )
            # A push leaves the pack as the client sent it, without the bitmap the generated
            # source has; give the hosted copy one, so that server-side git work stays small and
            # the comparison measures the SSH servers.
            served = host.repository_dir(big["id"])
            subprocess.run(["git", "-C", str(served), "repack", "-a", "-d", "-b", "-q"], check=True)
            small = generate_bare_repository(root / "small.git", commits=50, files=10)
            client.git(
                host.port, "-C", str(small), "push", "--quiet", "--mirror", host.url("bench/small")
            )

            timed_clone(client, sshd.port, sshd.url(served), root / "warm-sshd")
            timed_clone(client, host.port, host.url("bench/big"), root / "warm-host")
            ratios, ours, theirs = [], [], []
            for n in range(args.rounds):
                t_sshd = timed_clone(client, sshd.port, sshd.url(served), root / "c-sshd")
                t_host = timed_clone(client, host.port, host.url("bench/big"), root / "c-host")
                ours.append(t_host)
                theirs.append(t_sshd)
                ratios.append(t_host / t_sshd)
                print(
                    f"round {n + 1}: sshd {t_sshd:.3f}s  embedded {t_host:.3f}s  ratio {ratios[-1]:.3f}"
                )

            rss_mib = peak_rss_kib(host.proc.pid) / 1024
            failures = parallel_clones(client, host, root, args.parallel)
            rss_after_parallel = peak_rss_kib(host.proc.pid) / 1024
        finally:
            host.stop()
            sshd.stop()

    commits = subprocess.run(
        ["git", "-C", str(source), "rev-list", "--all", "--count"], capture_output=True, text=True
    ).stdout.strip()
    ratio = statistics.median(ratios)
    print()
    print(f"repository: {source} ({commits} commits)")
    print(
        f"clone median: sshd {statistics.median(theirs):.3f}s, embedded {statistics.median(ours):.3f}s"
    )
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(
        f"clone ratio embedded/sshd (median of {args.rounds}): {ratio:.3f}  target ≤ {TARGET_RATIO}  {verdict}"
    )
    print(
        f"host server peak RSS: {rss_mib:.1f} MiB after clones, {rss_after_parallel:.1f} MiB after parallel"
    )
    print(f"{args.parallel} parallel clones: {args.parallel - failures} ok, {failures} failed")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
