"""Connect, fetch, refresh: the platform against the built-in host over real ssh and git."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from repolink.git.mirrors import local_env, mirror_path, read_mirror_refs
from repolink.git.progress import INDEXING, FetchProgress
from repolink.keys import generate_key
from repolink.platform.connections import import_private_key
from repolink.store.key_records import get_key_record
from support.platformkit import WORKSPACE, HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases


def _mirror_commits(platform: Platform, project: str) -> set[str]:
    connection_id = platform.app.connections.connection_info(project).id
    path = mirror_path(platform.settings, connection_id)
    out = subprocess.run(
        ["git", f"--git-dir={path}", "rev-list", "--all"], capture_output=True, text=True
    )
    return set(out.stdout.split())


def test_generated_key_added_as_access_key_then_fetched_and_indexed(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect("gen", hosted.app.url(), grant_on="app")

    assert outcome.error is None
    assert outcome.generated
    assert outcome.public_key.key_type == "ssh-ed25519"
    result = outcome.fetch
    assert result is not None and not result.skipped
    host_commits = set(hosted.app.host_commits())
    assert result.new_commits == len(host_commits)
    assert _mirror_commits(platform, "gen") == host_commits

    connection = outcome.connection
    assert connection.state == "ok" and connection.error_code is None
    assert connection.attempted_at is not None and connection.fetched_at is not None
    assert connection.commits == len(host_commits)
    # Branches and tags, the annotated tag peeled to its commit.
    refs = {ref.name: ref for ref in platform.app.commits.list_refs("gen")}
    with platform.store.session() as session:
        key = get_key_record(session, connection.deploy_key.id)
    assert set(refs) == {
        "refs/heads/main",
        "refs/heads/feature",
        "refs/tags/v1.0",
        "refs/tags/v1.1",
    }
    assert refs["refs/heads/main"].commit_sha == hosted.app.git("rev-parse", "main")
    assert refs["refs/tags/v1.1"].commit_sha == hosted.app.git("rev-parse", "v1.1^{commit}")
    assert refs["refs/tags/v1.1"].target == hosted.app.git("rev-parse", "v1.1")
    # A successful fetch marks the deploy key used.
    assert key.last_used_at is not None and key.last_used_at >= connection.attempted_at


def test_generated_key_types_are_chosen(platform: Platform, hosted: HostedRepos) -> None:
    platform.project("ecdsa")

    outcome = platform.app.connections.connect(
        "ecdsa", hosted.app.url(), key_type="ecdsa", bits=384
    )
    # Not on the repository yet: the connection is kept, failed with auth_failed.
    assert outcome.public_key.key_type == "ecdsa-sha2-nistp384"
    assert outcome.error is not None and outcome.error.code == "auth_failed"
    assert outcome.connection.state == "failed"


def _ssh_keygen(directory: Path, name: str, *args: str) -> Path:
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-C", "", "-f", str(path), *args],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path


@pytest.mark.parametrize(
    ("fmt", "args", "passphrase", "header"),
    [
        ("openssh", ["-t", "ed25519", "-N", ""], None, b"BEGIN OPENSSH PRIVATE KEY"),
        (
            "pkcs1",
            ["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
            None,
            b"BEGIN RSA PRIVATE KEY",
        ),
        ("pkcs8", ["-t", "ecdsa", "-m", "PKCS8", "-N", ""], None, b"BEGIN PRIVATE KEY"),
        (
            "protected",
            ["-t", "ed25519", "-N", "correct horse"],
            "correct horse",
            b"BEGIN OPENSSH PRIVATE KEY",
        ),
    ],
)
def test_imported_key_of_each_format_fetches(
    platform: Platform,
    hosted: HostedRepos,
    tmp_path: Path,
    fmt: str,
    args: list[str],
    passphrase: str | None,
    header: bytes,
) -> None:
    path = _ssh_keygen(tmp_path, fmt, *args)
    data = path.read_bytes()
    assert header in data
    hosted.host.service.add_access_key(
        WORKSPACE, "app", path.with_suffix(".pub").read_text(), label=f"import {fmt}"
    )
    key = import_private_key(data, passphrase)

    outcome = platform.connect(f"imp-{fmt}", hosted.app.url(), key)

    assert outcome.error is None, outcome.error
    assert not outcome.generated
    assert outcome.connection.deploy_key.origin == "imported"
    assert outcome.fetch is not None
    assert outcome.fetch.new_commits == len(hosted.app.host_commits())


def test_refresh_with_nothing_new_skips_the_fetch(platform: Platform, hosted: HostedRepos) -> None:
    outcome = platform.connect(
        "refresh", hosted.other.url(), granted_key(hosted.host, "other", "r")
    )
    assert outcome.fetch is not None and not outcome.fetch.skipped
    path = mirror_path(platform.settings, outcome.connection.id)
    fetch_head_before = sorted(p.name for p in path.iterdir())

    again = platform.fetch("refresh")

    assert again.skipped
    assert again.new_commits == 0
    assert sorted(p.name for p in path.iterdir()) == fetch_head_before
    # The skipped refresh still counts as a successful use of the key.
    info = platform.app.connections.connection_info("refresh")
    assert info.state == "ok" and info.fetched_at is not None
    assert info.fetched_at > outcome.connection.fetched_at  # type: ignore[operator]


def test_refresh_shares_one_ssh_connection(platform: Platform, hosted: HostedRepos) -> None:
    platform.connect("shared", hosted.other.url(), granted_key(hosted.host, "other", "shared"))
    control = platform.settings.resolved_data_dir / "ssh-control"
    short = Path(tempfile.gettempdir()) / f"repolink-ssh-{os.getuid()}"
    sockets = [p for root in (control, short) if root.exists() for p in root.glob("*/s")]
    # The master of the first fetch listens for the next runs, in a directory only we may use.
    assert sockets, "no shared SSH connection socket was left for the next fetch"
    for socket in sockets:
        assert (socket.parent.stat().st_mode & 0o777) == 0o700


def test_one_new_commit_pushed_then_refetched_is_indexed_alone(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.connect("incr", hosted.app.url(), grant_on="app")
    sha = hosted.app.commit("one more commit")

    result = platform.fetch("incr")

    assert not result.skipped
    assert result.new_commits == 1
    page = platform.app.commits.list_commits("incr", limit=1)
    assert page.commits[0].sha == sha
    assert page.commits[0].subject == "one more commit"
    assert page.commits[0].refs == ("refs/heads/main",)


def test_progress_reports_gits_phases_and_indexing(platform: Platform, hosted: HostedRepos) -> None:
    platform.project("progress")

    steps: list[FetchProgress] = []
    key = granted_key(hosted.host, "app", "progress")
    outcome = platform.app.connections.connect(
        "progress", hosted.app.url(), key=key, on_progress=steps.append
    )
    assert outcome.error is None
    phases = {step.phase for step in steps}
    assert "Counting objects" in phases or "Enumerating objects" in phases
    assert INDEXING in phases
    indexing = [step.done for step in steps if step.phase == INDEXING]
    assert indexing[-1] == outcome.fetch.new_commits  # type: ignore[union-attr]


def test_the_key_file_is_gone_after_success_and_failure(
    platform: Platform, hosted: HostedRepos, private_tmp: Path
) -> None:
    seen: list[tuple[str, int]] = []

    def look(step: FetchProgress) -> None:
        for directory in private_tmp.glob("repolink-key-*"):
            key_file = directory / "id"
            if key_file.exists():
                seen.append((key_file.name, key_file.stat().st_mode & 0o777))

    key = granted_key(hosted.host, "app", "gone")
    platform.project("gone")

    ok = platform.app.connections.connect("gone", hosted.app.url(), key=key, on_progress=look)
    assert ok.error is None
    assert ("id", 0o600) in seen  # the key file existed, private, during the fetch
    assert list(private_tmp.glob("repolink-key-*")) == []

    failing = platform.connect("gone-bad", hosted.app.url(), generate_key())
    assert failing.error is not None and failing.error.code == "auth_failed"
    assert list(private_tmp.glob("repolink-key-*")) == []


def test_a_deleted_branch_and_a_rewritten_one_are_followed(
    platform: Platform, hosted: HostedRepos
) -> None:
    repo = hosted.other
    repo.git("branch", "-f", "doomed", "main")
    doomed_sha = repo.commit("commit only on doomed", branch="doomed")
    platform.connect("follow", repo.url(), granted_key(hosted.host, "other", "follow"))
    assert doomed_sha in {c.sha for c in platform.app.commits.list_commits("follow").commits}

    repo.push(":doomed")
    result = platform.fetch("follow")

    assert result.removed_commits == 1
    shas = {c.sha for c in platform.app.commits.list_commits("follow").commits}
    names = {ref.name for ref in platform.app.commits.list_refs("follow")}
    assert doomed_sha not in shas
    assert "refs/heads/doomed" not in names
    assert "refs/heads/doomed" not in read_mirror_refs(
        mirror_path(platform.settings, result.connection_id),
        env=local_env(platform.settings),
        runner=platform.runner,
    )


def test_leftovers_of_an_interrupted_fetch_are_removed_first(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect(
        "leftovers", hosted.other.url(), granted_key(hosted.host, "other", "x")
    )
    mirror = mirror_path(platform.settings, outcome.connection.id)
    pack_dir = mirror / "objects" / "pack"
    leftovers = [
        mirror / "packed-refs.lock",
        mirror / "shallow.lock",
        mirror / "HEAD.lock",
        mirror / "refs" / "heads" / "main.lock",
        pack_dir / "tmp_pack_AbC123",
        pack_dir / "pack-0123456789abcdef0123456789abcdef01234567.keep",
    ]
    for path in leftovers:
        path.write_bytes(b"fetch-pack 4242 on somewhere\n" if path.suffix == ".keep" else b"")
    # A pack kept on purpose (not by an unfinished fetch) stays.
    kept = pack_dir / "pack-fedcba9876543210fedcba9876543210fedcba98.keep"
    kept.write_bytes(b"kept by an operator\n")
    sha = hosted.other.commit("after the interruption")

    result = platform.fetch("leftovers")

    assert result.new_commits == 1
    assert not any(path.exists() for path in leftovers)
    assert kept.exists()
    assert sorted(result.repaired) == sorted(
        f"removed {path.relative_to(mirror)}" for path in leftovers
    )
    assert (
        read_mirror_refs(mirror, env=local_env(platform.settings), runner=platform.runner)[
            "refs/heads/main"
        ].commit
        == sha
    )
