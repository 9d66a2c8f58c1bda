"""Push → commit listed in OpenSSH mode (issue 11 §6), against raw git over a plain sshd.

    sudo .venv/bin/python bench/openssh_push.py [--pushes 10]

OpenSSH ``sshd`` on a loopback port runs ``repolink host shell`` as each key's forced command,
set up as docs/openssh-mode.md says (``tests/support/sshdkit``), and a project of the same data
directory is connected to ``team/app`` through it. No ``repolink serve`` runs. Each round makes
one commit and, with it:

- pushes it to ``team/app`` over that sshd and polls the commit index until the commit is
  listed, with no fetch requested: push → listed, from the start of ``git push`` and from its end;
- pushes it to ``team/other`` over a second sshd on the same data directory whose forced
  command has no ``REPOLINK_OPENSSH_URL`` (nothing queued): the push ratio of the two is what
  queueing the fetch and starting the detached ``repolink host run-fetches`` add to a push;
- raw git over a plain sshd in the same run: ``git push`` of the commit to a bare repository,
  and ``git fetch`` of it into a mirror — push then fetch with no repolink at all.

Needs root (sshd) and OpenSSH's sshd; prints medians and ratios, asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from _peers import Client, OpenSSHServer  # noqa: E402
from repolink import knownhosts  # noqa: E402
from repolink.app import Repolink  # noqa: E402
from repolink.git import keyscan  # noqa: E402
from repolink.knownhosts.values import host_key_from_line  # noqa: E402
from repolink.settings import Settings  # noqa: E402
from support.hostkit import GitClient, generate_key_pair, make_source_repository  # noqa: E402
from support.sshdkit import choose_login_user, hand_over, new_data_dir, run_sshd  # noqa: E402

LISTED_TIMEOUT = 60.0


def timed(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Seconds ``argv`` took; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr}")
    return elapsed


def push(url: str, source: Path, env: dict[str, str]) -> float:
    """Seconds ``git push`` of ``source``'s main to ``url`` took."""
    return timed("git", "push", "-q", url, "main:main", cwd=source, env=env)


def commit(source: Path, message: str, env: dict[str, str]) -> str:
    for args in (["add", "bench.txt"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", "-C", str(source), *args], check=True, env=env, capture_output=True)
    head = ["git", "-C", str(source), "rev-parse", "HEAD"]
    return subprocess.run(head, capture_output=True, text=True, check=True).stdout.strip()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(round(fraction * (len(ordered) - 1)), len(ordered) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pushes", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-openssh-push-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        login_user = choose_login_user()
        data_dir = new_data_dir(root, login_user)
        settings = Settings(data_dir=data_dir)
        account = generate_key_pair(root / "keys", "account")
        with Repolink(settings) as setup:
            for repository in ("app", "other"):
                setup.host.create_repository("team", repository)
            setup.host.add_account_key("team", account.public_line, label="developer")
        hand_over(data_dir, login_user)
        queueing = stack.enter_context(run_sshd(root / "sshd-a", data_dir, login_user))
        silent = stack.enter_context(
            run_sshd(root / "sshd-b", data_dir, login_user, openssh_url=False)
        )
        via_a = GitClient(
            root / "home-a", account, queueing.known_hosts, queueing.port, user=login_user
        )
        via_b = GitClient(
            root / "home-b", account, silent.known_hosts, silent.port, user=login_user
        )
        source = root / "source"
        make_source_repository(source, via_a.env(), commits=3)
        for client, repository in ((via_a, "app"), (via_b, "other")):
            push(client.url(f"team/{repository}.git"), source, client.env())

        raw_client = Client.create(root / "raw")
        plain = OpenSSHServer(root / "plain-sshd", raw_client)
        stack.callback(plain.stop)
        raw_client.trust(plain.port)
        bare = root / "raw.git"
        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        raw_env = raw_client.env(plain.port)
        push(plain.url(bare), source, raw_env)
        mirror = root / "raw-mirror.git"
        timed("git", "clone", "-q", "--mirror", plain.url(bare), str(mirror), env=raw_env)

        app = stack.enter_context(Repolink(settings))
        fields = queueing.known_hosts.read_text().split()
        with app.store.session() as session:
            knownhosts.trust(
                session,
                "127.0.0.1",
                queueing.port,
                host_key_from_line(" ".join(fields[1:3])).sha256_fingerprint,
                scanner=keyscan.scanner_for(settings, app.runner),
            )
        app.projects.create_project("bench", slug="bench")

        def grant(connection: object) -> None:
            line = connection.deploy_key.public_key  # type: ignore[attr-defined]
            app.host.add_access_key("team", "app", line, label="bench")

        outcome = app.connections.connect("bench", via_a.url("team/app.git"), before_fetch=grant)
        if outcome.error is not None:
            raise RuntimeError(outcome.error.one_line())
        hand_over(data_dir, login_user)

        from_start, after_push, push_a, push_b, raw_push, raw_fetch = [], [], [], [], [], []
        for n in range(args.pushes + 1):  # the first round warms up, and is not counted
            (source / "bench.txt").write_text(f"round {n}\n")
            sha = commit(source, f"round {n}", via_a.env())
            start = time.perf_counter()
            t_a = push(via_a.url("team/app.git"), source, via_a.env())
            pushed = time.perf_counter()
            while True:
                newest = app.commits.list_commits("bench", limit=1).commits
                if newest and newest[0].sha == sha:
                    break
                if time.perf_counter() - start > LISTED_TIMEOUT:
                    raise RuntimeError(
                        f"commit {sha} not listed {LISTED_TIMEOUT:.0f} s after its push"
                    )
                time.sleep(0.005)
            listed = time.perf_counter()
            t_b = push(via_b.url("team/other.git"), source, via_b.env())
            t_raw_push = push(plain.url(bare), source, raw_env)
            t_raw_fetch = timed("git", f"--git-dir={mirror}", "fetch", "-q", env=raw_env)
            if n == 0:
                continue
            from_start.append(listed - start)
            after_push.append(listed - pushed)
            push_a.append(t_a)
            push_b.append(t_b)
            raw_push.append(t_raw_push)
            raw_fetch.append(t_raw_fetch)
            print(
                f"round {n}: push {t_a:.3f}s (no queueing {t_b:.3f}s)  listed {listed - start:.3f}s "
                f"after start, {listed - pushed:.3f}s after the push  raw push {t_raw_push:.3f}s "
                f"raw fetch {t_raw_fetch:.3f}s",
                flush=True,
            )
        runs = app.fetch_requests.history("bench", limit=500)
        print(f"fetch runs: {len(runs)} ({sum(run.state == 'done' for run in runs)} done)")

    median = statistics.median
    raw_floor = median(raw_push) + median(raw_fetch)
    print(
        f"push → listed (OpenSSH mode, {args.pushes} pushes): p50 {median(from_start):.3f}s  p95 {percentile(from_start, 0.95):.3f}s from the start of git push; p50 {median(after_push):.3f}s after it returned"
    )
    print(
        f"push through sshd: p50 {median(push_a):.3f}s queueing the fetch, {median(push_b):.3f}s without  ratio {median(push_a) / median(push_b):.2f}"
    )
    print(
        f"raw git over a plain sshd: push p50 {median(raw_push):.3f}s, fetch p50 {median(raw_fetch):.3f}s"
    )
    print(f"push → listed / (raw push + raw fetch): {median(from_start) / raw_floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
