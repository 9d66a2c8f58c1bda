"""What checking every received object costs a mirror's first clone (issue 10 §3.12).

    python bench/fsck.py [--rounds 5] [--commits 20000]

The mirror's clone and fetches run with `transfer.fsckObjects=true`
(`repolink.git.environment.FSCK_ON_RECEIVE`). This clones the same generated repository (cached
under bench/.work, as bench/host_clone.py makes it, or REPOLINK_BENCH_REPO) with and without
that setting, alternating, over git's own file:// transport so only the check differs; prints
the medians and their ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from host_clone import WORK, source_repository
from repolink.git.environment import FSCK_ON_RECEIVE


def timed_clone(source: Path, dest: Path, *, checked: bool) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    settings = list(FSCK_ON_RECEIVE) if checked else []
    start = time.perf_counter()
    subprocess.run(
        ["git", *settings, "clone", "--bare", "--quiet", f"file://{source}", str(dest)],
        check=True,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--commits", type=int, default=20_000)
    args = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    source = source_repository(args.commits)
    plain: list[float] = []
    checked: list[float] = []
    with tempfile.TemporaryDirectory(prefix="fsck-", dir=WORK) as tmp:
        dest = Path(tmp) / "clone.git"
        for round_ in range(args.rounds):
            # Alternate which goes first, so a warming cache favours neither.
            for check in (round_ % 2 == 0, round_ % 2 == 1):
                (checked if check else plain).append(timed_clone(source, dest, checked=check))
    plain_s, checked_s = statistics.median(plain), statistics.median(checked)
    print(f"clone of {source.name}, median of {args.rounds}")
    print(f"without fsck   {plain_s:7.3f} s")
    print(f"with fsck      {checked_s:7.3f} s   ratio {checked_s / plain_s:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
