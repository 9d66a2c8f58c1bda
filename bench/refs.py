"""The ref reader on the repository of issue 10 §3.7, against raw git, in the same run.

    python bench/refs.py [--message-mb 10] [--annotated 50000] [--plain 50000] [--old-timeout 120]

One commit with a 10 MB message and 100k tags at it (half annotated, half lightweight; built
once, cached under bench/.work). Timed, each a median of --rounds:
- raw: `git for-each-ref --format=%(refname) %(objectname)`, the floor any reader pays;
- new: `repolink.git.refs.read_refs` (for-each-ref, then one cat-file peeling the tags);
- old: the reader before the fix (`%(*objectname)` in for-each-ref), run once and stopped
  after --old-timeout seconds, the limit a fetch had.
Printed: each time and the ratios new/raw and old/new.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / ".work"
sys.path.insert(0, str(ROOT / "tests"))

from repolink.git.environment import hardened_env  # noqa: E402
from repolink.git.refs import read_refs  # noqa: E402
from repolink.git.runner import HardenedRunner  # noqa: E402
from support.manyrefs import build_many_refs_repository  # noqa: E402

OLD_FORMAT = "%(refname)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)"


def repository(message_mb: int, annotated: int, plain: int) -> Path:
    cached = WORK / f"manyrefs-{message_mb}mb-{annotated}a-{plain}p.git"
    if not cached.exists():
        print(f"building {cached} …", flush=True)
        scratch = cached.with_suffix(".tmp")
        subprocess.run(["rm", "-rf", str(scratch)], check=True)
        build_many_refs_repository(
            scratch, message_bytes=message_mb << 20, annotated=annotated, plain=plain
        )
        scratch.rename(cached)
    return cached


def timed(action: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--message-mb", type=int, default=10)
    parser.add_argument("--annotated", type=int, default=50_000)
    parser.add_argument("--plain", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--old-timeout", type=float, default=120.0)
    args = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    git_dir = repository(args.message_mb, args.annotated, args.plain)
    runner = HardenedRunner()
    with tempfile.TemporaryDirectory(prefix="refs-", dir=WORK) as home:
        env = hardened_env(Path(home))

        def raw() -> None:
            subprocess.run(
                [
                    "git",
                    f"--git-dir={git_dir}",
                    "for-each-ref",
                    "--format=%(refname) %(objectname)",
                ],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        def new() -> None:
            read_refs(git_dir, env=env, runner=runner)

        raw_s = timed(raw, args.rounds)
        new_s = timed(new, args.rounds)
        start = time.perf_counter()
        try:
            subprocess.run(
                ["git", f"--git-dir={git_dir}", "for-each-ref", f"--format={OLD_FORMAT}"],
                stdout=subprocess.DEVNULL,
                check=True,
                timeout=args.old_timeout,
            )
            old_s, stopped = time.perf_counter() - start, False
        except subprocess.TimeoutExpired:
            old_s, stopped = args.old_timeout, True

    refs = args.annotated + args.plain + 1
    print(f"{refs} refs at a commit with a {args.message_mb} MB message")
    print(f"raw for-each-ref            {raw_s:8.3f} s")
    print(f"read_refs (new)             {new_s:8.3f} s   new/raw {new_s / raw_s:6.2f}")
    old_text = f"> {old_s:.0f} s (stopped)" if stopped else f"{old_s:.3f} s"
    ratio = ">" if stopped else " "
    print(f"old reader (%(*objectname)) {old_text}   old/new {ratio}{old_s / new_s:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
