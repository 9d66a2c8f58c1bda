"""Hosted repositories on disk: where they live (the data directory's own storage, or the one
``REPOLINK_HOST_STORAGE`` names, refused when it cannot be used), and the main branch a listing
shows, read from files alone."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.errors import HostStorageError
from repolink.git.runner import HardenedRunner
from repolink.host.repo_storage import usable_storage
from repolink.host.service import HostService
from repolink.settings import Settings
from repolink.store import Store
from support.hostkit import make_source_repository


def git_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }


def git(env: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], env=env, check=True, capture_output=True)


def test_main_branch_is_known_once_the_branch_head_names_exists(
    host_service: HostService, tmp_path: Path
) -> None:
    info = host_service.create_repository("team", "app")
    bare = host_service.repository_path(info)
    assert host_service.main_branch(info) is None  # empty: HEAD names a branch not yet pushed

    env = git_env(tmp_path / "home")
    make_source_repository(tmp_path / "src", env)
    git(env, "-C", str(tmp_path / "src"), "push", "-q", str(bare), "main:refs/heads/feature")
    assert host_service.main_branch(info) is None  # a branch, but not the one HEAD names

    git(env, "-C", str(tmp_path / "src"), "push", "-q", str(bare), "main")
    assert host_service.main_branch(info) == "main"

    git(env, "--git-dir", str(bare), "pack-refs", "--all", "--prune")
    assert not (bare / "refs" / "heads" / "main").exists()
    assert host_service.main_branch(info) == "main"  # found in packed-refs

    git(env, "--git-dir", str(bare), "symbolic-ref", "HEAD", "refs/heads/feature")
    assert host_service.main_branch(info) == "feature"


def test_main_branch_of_a_detached_or_odd_head_is_unknown(host_service: HostService) -> None:
    info = host_service.create_repository("team", "app")
    head = host_service.repository_path(info) / "HEAD"
    (head.parent / "refs" / "heads" / "main").write_text("0" * 40 + "\n")
    assert host_service.main_branch(info) == "main"
    for text in (
        "0" * 40 + "\n",  # detached
        "ref: refs/tags/main\n",  # not a branch
        "ref: refs/heads/../../config\n",  # nothing outside refs/heads is read
        "ref: refs/heads/\n",
    ):
        head.write_text(text)
        assert host_service.main_branch(info) is None, text
    head.unlink()
    assert host_service.main_branch(info) is None


def test_repositories_live_in_the_data_directory_unless_a_storage_is_set(tmp_path: Path) -> None:
    own = Settings(data_dir=tmp_path / "data")
    assert usable_storage(own) == tmp_path / "data" / "host" / "repositories"
    assert usable_storage(own).is_dir()  # the data directory's own is made, as before

    storage = tmp_path / "shared"
    storage.mkdir()
    shared = Settings(data_dir=tmp_path / "other", host_storage=storage)
    with Store.open(shared) as store:
        service = HostService(shared, store, runner=HardenedRunner())
        info = service.create_repository("team", "app")
        assert service.repository_path(info) == storage / f"{info.id}.git"
        assert (storage / f"{info.id}.git" / "HEAD").is_file()
    assert not (tmp_path / "other" / "host" / "repositories").exists()


def test_a_storage_that_does_not_exist_is_refused_and_never_made(tmp_path: Path) -> None:
    unmounted = tmp_path / "mnt" / "repolink"
    settings = Settings(data_dir=tmp_path / "data", host_storage=unmounted)
    with pytest.raises(HostStorageError) as raised:
        usable_storage(settings)
    assert raised.value.code == "host_storage_missing"
    assert str(unmounted) in raised.value.message
    assert "REPOLINK_HOST_STORAGE" in raised.value.hint
    with Store.open(settings) as store:
        service = HostService(settings, store, runner=HardenedRunner())
        with pytest.raises(HostStorageError, match="does not exist"):
            service.create_repository("team", "app")
    assert not unmounted.exists()


def test_a_storage_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repositories").write_text("not a directory\n")
    settings = Settings(data_dir=tmp_path / "data", host_storage=tmp_path / "repositories")
    with pytest.raises(HostStorageError) as raised:
        usable_storage(settings)
    assert raised.value.code == "host_storage_not_a_directory"
    assert "REPOLINK_HOST_STORAGE" in raised.value.hint


@pytest.fixture
def read_only_storage() -> Iterator[Path]:
    """A directory others may enter but not write, outside pytest's private temp tree (which
    another user could not enter)."""
    parent = Path(tempfile.mkdtemp(prefix="rl-storage-"))
    try:
        parent.chmod(0o755)
        storage = parent / "repositories"
        storage.mkdir(mode=0o555)
        storage.chmod(0o555)
        yield storage
    finally:
        shutil.rmtree(parent, ignore_errors=True)  # empty: removing it needs only the parent


def _refusal_as_nobody(settings: Settings) -> tuple[str, str]:
    """The code and hint :func:`usable_storage` refuses ``settings`` with, checked in a child
    process that dropped root's rights first (root may write anywhere)."""
    nobody = pwd.getpwnam("nobody")
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report on the pipe, exit without running any of pytest's code
        status = 1
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            usable_storage(settings)
        except HostStorageError as exc:
            os.write(writing, f"{exc.code}\n{exc.hint}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        report = pipe.read().decode()
    assert os.waitpid(pid, 0)[1] == 0, "the storage was not refused"
    code, hint = report.split("\n", 1)
    return code, hint


def test_a_storage_this_user_may_not_write_is_refused(
    read_only_storage: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", host_storage=read_only_storage)
    if os.geteuid() == 0:
        code, hint = _refusal_as_nobody(settings)
    else:
        with pytest.raises(HostStorageError) as raised:
            usable_storage(settings)
        code, hint = raised.value.code, raised.value.hint
    assert code == "host_storage_not_writable"
    assert "REPOLINK_HOST_STORAGE" in hint
