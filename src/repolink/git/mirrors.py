"""The bare mirror of one repository connection, on local disk (architecture.md#words "Mirror").

- The path comes from the connection id alone: ``<data_dir>/mirrors/<id>.git``.
- :func:`locked` is the one-fetch-at-a-time lock: ``fcntl.flock`` on ``<id>.git.fetch-lock``
  beside the mirror, so it holds across threads and processes and is released by the kernel
  when its holder dies, however it dies.
- :func:`prepare`, called with the lock held, repairs what a killed fetch leaves behind (a
  fetch marks itself with :func:`fetching`): git processes of that fetch still running (their
  parent was killed, they were not), git's own ``*.lock`` files (``packed-refs.lock``,
  ``shallow.lock``, ``refs/heads/x.lock`` …), half received packs and the ``.keep`` files of
  unfinished fetches. While we hold the lock no other fetch of this mirror can be running, so
  every such file older than the lock belongs to a process that is gone.
- :func:`first_fetch` is how a mirror without refs gets its history: ``git clone --bare``
  (:func:`clone_argv`: branches and tags, like a fetch with the platform's refspecs) into the
  mirror's path. A ``git fetch`` into an empty repository walks every object it received once
  more to check connectivity (over a second on a 50k-commit history); ``git clone`` proves the
  same while it indexes the pack. A killed clone leaves a repository without refs: the next
  :func:`prepare` stops the clone and removes its leftovers, the next first fetch starts over.
  Beside the clone, a scout fetches the commits alone into ``<id>.git.scout``
  (:mod:`repolink.platform.scout`); :func:`prepare` removes one a killed fetch left.
- :func:`read_ref_targets` lists what each branch and tag names, from the ref files when they
  are plain (no git process: what a refresh with nothing new compares with the remote), else
  with :func:`repolink.git.refs.read_refs`, which the index uses to peel tags to commits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from repolink.errors import GitError
from repolink.git.environment import FSCK_ON_RECEIVE, git_argv, hardened_env
from repolink.git.refs import OBJECT_ID, GitRef, read_refs
from repolink.git.runner import LOCAL_GIT_TIMEOUT, GitRunner
from repolink.settings import Settings

log = logging.getLogger(__name__)

MIRRORS_DIR = "mirrors"
LOCK_SUFFIX = ".fetch-lock"
FETCHING_SUFFIX = ".fetching"
SCOUT_SUFFIX = ".scout"
LOCAL_HOME_DIR = "platform-home"
_LOCK_POLL = 0.02
_REAP_WAIT = 5.0
_CONNECTION_ID = re.compile(r"[0-9a-f]{32}")
# What a mirror holds, and so what is compared with the remote: branches and tags.
LISTED_REF_PREFIXES = ("refs/heads/", "refs/tags/")
_LISTED_PATTERNS = tuple(prefix.rstrip("/") for prefix in LISTED_REF_PREFIXES)
# Ref names whose validity is plain to see (git check-ref-format's rules hold for every one of
# them); anything else is left to git to judge.
_PLAIN_REF_NAME = re.compile(
    r"refs/(?:heads|tags)(?:/(?![^/]*\.lock(?:/|$))[A-Za-z0-9_+@-]+(?:\.[A-Za-z0-9_+@-]+)*)+"
)
# Left in objects/pack by index-pack when its fetch is killed.
_TEMP_PACK_PREFIXES = ("tmp_pack_", "tmp_idx_", "tmp_rev_", "tmp_mtimes_")


@dataclass(frozen=True)
class MirrorLock:
    mirror: Path
    waited: bool
    acquired_at: float


def mirror_path(settings: Settings, connection_id: str) -> Path:
    """``<data_dir>/mirrors/<connection id>.git`` — from the id, never from a URL."""
    if not _CONNECTION_ID.fullmatch(connection_id):
        raise ValueError("a connection id is 32 lower-case hex digits")
    return settings.resolved_data_dir / MIRRORS_DIR / f"{connection_id}.git"


def local_env(settings: Settings) -> dict[str, str]:
    """The hardened environment for git commands that only read or write the mirror."""
    home = settings.resolved_data_dir / LOCAL_HOME_DIR
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return hardened_env(home)


@contextlib.contextmanager
def locked(
    mirror: Path, *, timeout: float, on_wait: Callable[[], None] | None = None
) -> Iterator[MirrorLock]:
    """Hold the mirror's fetch lock; wait (at most ``timeout`` seconds) while another has it.

    ``on_wait`` is called once, just before waiting, when the lock is taken.
    """
    mirror.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_file = mirror.with_name(mirror.name + LOCK_SUFFIX)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        waited = not _try_lock(fd)
        if waited:
            log.info("waiting for the fetch lock of mirror %s", mirror.name)
            if on_wait is not None:
                on_wait()
            _wait_for_lock(fd, mirror, timeout)
            log.info("got the fetch lock of mirror %s", mirror.name)
        yield MirrorLock(mirror, waited, time.time())
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_for_lock(fd: int, mirror: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _try_lock(fd):
        if time.monotonic() > deadline:
            raise GitError(
                "mirror_busy",
                f"another fetch of mirror {mirror.name} has held its lock for over {timeout:.0f} s",
                "wait for it to finish and fetch again; if no repolink process is running, "
                "report this as a bug",
            )
        time.sleep(_LOCK_POLL)


def prepare(mirror: Path, lock: MirrorLock) -> list[str]:
    """Make the mirror fit for a fetch (the lock must be held); return what was repaired.

    A mirror that does not exist yet stays so: its first fetch clones it (:func:`first_fetch`).
    """
    if lock.mirror != mirror:
        raise ValueError("prepare() needs the lock of this very mirror")
    repaired: list[str] = []
    marker = _fetching_marker(mirror)
    if marker.exists():
        # The last fetch never reached its end: its git may still be running unattended.
        repaired += [f"stopped process {pid}" for pid in _reap_orphans(mirror)]
        marker.unlink(missing_ok=True)
    scout = scout_path(mirror)
    if scout.exists():
        shutil.rmtree(scout, ignore_errors=True)
        repaired.append(f"removed {scout.name}")
    # From here on nothing but us writes to the mirror: what is there now is left over.
    settled = max(lock.acquired_at, time.time())
    if (mirror / "HEAD").is_file():
        repaired += _remove_stale_files(mirror, older_than=settled)
    for item in repaired:
        log.warning("mirror %s: repaired after an interrupted fetch: %s", mirror.name, item)
    return repaired


@contextlib.contextmanager
def fetching(mirror: Path) -> Iterator[None]:
    """Mark the mirror as being fetched into while the body runs (hold the lock).

    A mark still there at the next :func:`prepare` means that fetch was killed; only then is
    the process table searched for what it left running.
    """
    marker = _fetching_marker(mirror)
    marker.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def _fetching_marker(mirror: Path) -> Path:
    return mirror.with_name(mirror.name + FETCHING_SUFFIX)


def scout_path(mirror: Path) -> Path:
    """Where the scout of ``mirror``'s first fetch keeps its partial clone."""
    return mirror.with_name(mirror.name + SCOUT_SUFFIX)


def clone_argv(git_url: str, mirror: Path) -> list[str]:
    """``git clone --bare`` of ``git_url`` (an ``SSHURL.git_url``) into ``mirror`` (inside
    :func:`first_fetch`): every branch and tag, with git's progress."""
    return git_argv(
        *FSCK_ON_RECEIVE,
        "clone",
        "--bare",
        "--progress",
        "--no-recurse-submodules",
        "--",
        git_url,
        str(mirror),
    )


@contextlib.contextmanager
def first_fetch(mirror: Path, *, env: Mapping[str, str], runner: GitRunner) -> Iterator[Path]:
    """The first fetch of a mirror without refs (hold the lock, mark it :func:`fetching`):
    yield the path to clone into, the mirror's own, emptied first (objects no ref reaches are
    worth nothing) and private to us (``git clone`` accepts an empty directory). After the
    clone, the remote section it writes into the config goes: the URL lives in the database
    only, and every fetch names it."""
    shutil.rmtree(mirror, ignore_errors=True)
    mirror.mkdir(mode=0o700)
    yield mirror
    runner.run(
        git_argv("config", "--remove-section", "remote.origin", git_dir=mirror),
        env=env,
        timeout=LOCAL_GIT_TIMEOUT,
    ).check("finishing the first fetch of the mirror")


def remove(mirror: Path, *, timeout: float) -> None:
    """Delete the mirror (waiting for a running fetch to end) and its lock file."""
    if not mirror.parent.exists():
        return
    with locked(mirror, timeout=timeout):
        shutil.rmtree(mirror, ignore_errors=True)
        shutil.rmtree(scout_path(mirror), ignore_errors=True)
        _fetching_marker(mirror).unlink(missing_ok=True)
        mirror.with_name(mirror.name + LOCK_SUFFIX).unlink(missing_ok=True)


def read_ref_targets(mirror: Path, *, env: Mapping[str, str], runner: GitRunner) -> dict[str, str]:
    """Branches and tags of the mirror and the object each names (hold the lock).

    Read from ``packed-refs`` and the loose ref files (which win), as git's files backend
    keeps them; when anything there is not a plain ref — a symbolic ref, an unreadable file,
    a ref storage git may have changed — git lists them instead."""
    if not (mirror / "HEAD").is_file():
        return {}
    targets = _ref_files(mirror)
    if targets is None:
        refs = read_mirror_refs(mirror, env=env, runner=runner)
        return {name: ref.target for name, ref in refs.items()}
    return targets


def read_mirror_refs(
    mirror: Path, *, env: Mapping[str, str], runner: GitRunner
) -> dict[str, GitRef]:
    """The mirror's branches and tags as git lists them, tags peeled to their commits (hold the
    lock): what the index records. A mirror not cloned yet has none."""
    if not (mirror / "HEAD").is_file():
        return {}
    return read_refs(
        mirror, env=env, runner=runner, patterns=_LISTED_PATTERNS, what="reading the mirror's refs"
    )


def _ref_files(mirror: Path) -> dict[str, str] | None:
    if (mirror / "reftable").exists():
        return None
    targets: dict[str, str] = {}
    try:
        packed = (mirror / "packed-refs").read_text("ascii")
    except FileNotFoundError:
        packed = ""
    except (OSError, UnicodeDecodeError):
        return None
    for line in packed.splitlines():
        if not line or line[0] in "#^":  # the header, and the peeled line of an annotated tag
            continue
        target, _, name = line.partition(" ")
        if not OBJECT_ID.fullmatch(target):
            return None
        if name.startswith(LISTED_REF_PREFIXES):
            if not _PLAIN_REF_NAME.fullmatch(name):
                return None
            targets[name] = target
    for prefix in LISTED_REF_PREFIXES:
        top = mirror / prefix
        for directory, _subdirs, files in os.walk(top):
            for file in files:
                if file.endswith(".lock"):
                    continue
                path = Path(directory, file)
                try:
                    content = path.read_bytes()
                except OSError:
                    return None
                target = content.strip().decode("ascii", "replace")
                name = prefix + path.relative_to(top).as_posix()
                if not OBJECT_ID.fullmatch(target) or not _PLAIN_REF_NAME.fullmatch(name):
                    return None  # a symbolic ref ("ref: …"), not a ref, or a name git refuses
                targets[name] = target
    return targets


def _remove_stale_files(mirror: Path, *, older_than: float) -> list[str]:
    removed: list[str] = []

    def drop(path: Path) -> None:
        try:
            if path.lstat().st_mtime > older_than:
                return  # made after we took the lock: not from an earlier fetch
            path.unlink()
        except FileNotFoundError:
            return
        removed.append(f"removed {path.relative_to(mirror)}")

    for candidate in _lock_file_candidates(mirror):
        drop(candidate)
    pack_dir = mirror / "objects" / "pack"
    if pack_dir.is_dir():
        for entry in pack_dir.iterdir():
            if entry.name.startswith(_TEMP_PACK_PREFIXES) or _is_fetch_keep(entry):
                drop(entry)
    return removed


def _lock_file_candidates(mirror: Path) -> Iterator[Path]:
    """Every ``*.lock`` where git puts them; loose object directories never hold any."""
    for entry in mirror.iterdir():
        if entry.is_file() and entry.name.endswith(".lock"):
            yield entry
    for directory in (mirror / "refs", mirror / "logs", mirror / "objects" / "info"):
        if directory.is_dir():
            for root, _dirs, files in os.walk(directory):
                for name in files:
                    if name.endswith(".lock"):
                        yield Path(root) / name


def _is_fetch_keep(path: Path) -> bool:
    # index-pack --keep writes "fetch-pack <pid> on <host>"; the fetch removes it once the
    # refs are updated. One left over pins its pack forever and means the fetch died.
    if not path.name.endswith(".keep"):
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(11) == b"fetch-pack "
    except OSError:
        return False


def _reap_orphans(mirror: Path) -> list[int]:
    """Stop git fetches and clones of this mirror (and its scout) whose repolink process
    died (Linux only).

    The runner starts git in a session of its own, so killing repolink with SIGKILL leaves the
    fetch running unattended. We hold the lock, so any fetch of this mirror is such an orphan;
    its whole process group (git, ssh, index-pack) is stopped before we touch the mirror.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    marker = f"--git-dir={mirror}".encode()
    destinations = {str(mirror).encode(), str(scout_path(mirror)).encode()}
    own_uid = os.getuid()
    stopped: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if entry.stat().st_uid != own_uid:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fetching = marker in argv and bool({b"fetch", b"ls-remote"} & set(argv))
        cloning = bool(destinations & set(argv)) and b"clone" in argv
        if not fetching and not cloning:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            pgid = os.getpgid(pid)
            if pgid == pid:  # the session leader runner started: take its whole group
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            stopped.append(pid)
    _wait_gone(stopped)
    return stopped


def _wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + _REAP_WAIT
    for pid in pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(_LOCK_POLL)


def _alive(pid: int) -> bool:
    try:
        status = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    # A zombie is gone for our purposes: it holds no files and writes nothing.
    return status.rpartition(")")[2].split()[:1] != ["Z"]
