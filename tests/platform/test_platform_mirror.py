"""The mirror's first fetch (a bare clone into its path) and its repair after a killed one."""

from __future__ import annotations

import subprocess
import sys
import time

from platformkit import HostedRepos, Platform, granted_key

from repolink.platform import mirror
from repolink.platform.connections import connection_info


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def test_a_first_fetch_clones_branches_and_tags_and_keeps_no_url(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect("clone", hosted.app.url(), granted_key(hosted.host, "app", "cl"))
    assert outcome.error is None, outcome.error
    path = mirror.mirror_path(platform.settings, outcome.connection.id)

    refs = mirror.read_refs(path, env=mirror.local_env(platform.settings))

    assert set(refs) == {
        "refs/heads/main",
        "refs/heads/feature",
        "refs/tags/v1.0",
        "refs/tags/v1.1",
    }
    assert refs["refs/tags/v1.1"].commit == hosted.app.git("rev-parse", "v1.1^{commit}")
    assert _git(f"--git-dir={path}", "config", "--bool", "core.bare").strip() == "true"
    assert path.stat().st_mode & 0o777 == 0o700
    # The URL lives in the database only: the mirror's config names no remote.
    config = (path / "config").read_text()
    assert "[remote" not in config and "127.0.0.1" not in config
    # The next fetch into it is a refresh.
    hosted.app.commit("after the clone")
    assert platform.fetch("clone").new_commits == 1


def test_a_mirror_left_without_refs_is_cloned_again(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect("again", hosted.other.url(), granted_key(hosted.host, "other", "a"))
    path = mirror.mirror_path(platform.settings, outcome.connection.id)
    # What a clone killed before it wrote any ref leaves: a repository with objects, no refs.
    subprocess.run(["rm", "-rf", str(path)], check=True)
    _git("init", "--quiet", "--bare", str(path))
    (path / "objects" / "pack" / "tmp_pack_half").write_bytes(b"PACK half received")
    (path / "junk-from-the-killed-clone").write_text("x")

    result = platform.fetch("again")

    assert not result.skipped
    assert not (path / "junk-from-the-killed-clone").exists()
    assert set(mirror.read_refs(path, env=mirror.local_env(platform.settings))) == {
        "refs/heads/main"
    }
    with platform.store.session() as session:
        assert connection_info(session, "again").state == "ok"


def test_prepare_stops_a_clone_whose_repolink_process_died(platform: Platform) -> None:
    path = mirror.mirror_path(platform.settings, "0" * 32)
    # Stands in for `git clone … -- URL <mirror>` left running by a killed repolink: the same
    # argv words, in a session of its own as gitcli starts git.
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "clone", "--", "URL", str(path)],
        start_new_session=True,
    )
    try:
        with mirror.locked(path, timeout=10) as lock:
            # The mark of a fetch that never reached its end.
            path.with_name(path.name + mirror.FETCHING_SUFFIX).write_text("4242\n")

            repaired = mirror.prepare(path, lock)

        assert repaired == [f"stopped process {orphan.pid}"]
        deadline = time.monotonic() + 10
        while orphan.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert orphan.returncode is not None and orphan.returncode < 0
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
