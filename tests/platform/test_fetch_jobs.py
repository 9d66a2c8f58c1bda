"""The fetch job against a slow peer: a worker that stops cancels the fetch in flight — its
git stopped, the mirror consistent (fsck passes, no lock left), the run waiting again with
its attempt not counted — and the next worker completes it."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from repolink.git.mirrors import mirror_path
from support.platformkit import CountingProxy, HostedRepos, Platform

WAIT = 120.0
BIG_FILE_BYTES = 3 << 20


def _fsck(mirror: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", f"--git-dir={mirror}", "fsck", "--full", "--no-dangling"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_cancelled_fetch_leaves_a_consistent_mirror_and_the_next_worker_completes_it(
    platform: Platform, hosted: HostedRepos, proxy: CountingProxy
) -> None:
    platform.trust_host(proxy.port)
    assert platform.connect("slow", hosted.app.url(proxy.port), grant_on="app").ok
    service = platform.app.fetch_requests
    mirror = mirror_path(platform.settings, platform.app.connections.connection_info("slow").id)
    sha = hosted.app.commit_file("big.bin", BIG_FILE_BYTES, "a large file")
    proxy.throttle = 0.02  # about 200 KB/s: the fetch takes many seconds

    async def cancel_midway() -> int:
        worker = platform.app.fetch_worker()
        await worker.start()
        try:
            run = await asyncio.to_thread(service.request, "slow", trigger="api")
            relayed = proxy.relayed
            deadline = time.monotonic() + WAIT
            while proxy.relayed < relayed + 256 * 1024:  # the pack is on its way
                assert time.monotonic() < deadline, "the fetch never started transferring"
                await asyncio.sleep(0.05)
            assert (await asyncio.to_thread(service.get_run, run.id)).state == "running"
        finally:
            await worker.stop(grace=0)
        return run.id

    run_id = asyncio.run(cancel_midway())

    run = service.get("slow", run_id)
    assert (run.state, run.attempts, run.error_code) == ("queued", 0, None), run.error_message
    connection = platform.app.connections.connection_info("slow")
    assert connection.state == "ok"  # a cancel is no failure of the connection
    assert sha not in {commit.sha for commit in platform.app.commits.list_commits("slow").commits}
    checked = _fsck(mirror)
    assert checked.returncode == 0, checked.stderr
    assert list(mirror.rglob("*.lock")) == []

    proxy.throttle = None
    counts = asyncio.run(platform.app.fetch_worker().drain())

    done = service.get("slow", run_id)
    assert (counts.done, done.state, done.new_commits, done.attempts) == (1, "done", 1, 1)
    assert done.first_seq is not None and done.last_seq is not None
    checked = _fsck(mirror)
    assert checked.returncode == 0, checked.stderr
    page = platform.app.commits.list_commits("slow", limit=1)
    assert [commit.sha for commit in page.commits] == [sha]
