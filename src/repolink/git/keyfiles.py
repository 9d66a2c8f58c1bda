"""Key material on disk for one run, and kept out of what a run prints (architecture.md#security).

- :func:`private_key_file` puts a private key in a 0600 file inside a 0700 directory and removes
  both afterwards, whatever happens. The key never travels on an argument list.
- :func:`remove_stale_key_directories` wipes what a process killed mid-run left behind.
- :func:`scrub` cleans git/ssh stderr of temp paths and anything that looks like key material,
  before anyone sees it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from repolink.git.terminal import strip_terminal_controls

log = logging.getLogger(__name__)

__all__ = ["KEY_DIR_PREFIX", "private_key_file", "remove_stale_key_directories", "scrub"]

KEY_DIR_PREFIX = "repolink-key-"

_KEY_LINE_MARKERS = (
    "PRIVATE KEY",
    "BEGIN OPENSSH",
    "BEGIN SSH2",
    "PuTTY-User-Key-File",
    "Private-Lines:",
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{48,}={0,2}")
_HEX_ONLY = re.compile(r"[0-9a-fA-F]+")


@contextlib.contextmanager
def private_key_file(key: bytes, *, base_dir: Path | None = None) -> Iterator[Path]:
    """Yield the path of a 0600 file holding ``key``, inside a fresh 0700 directory.

    The file is overwritten with zeros and removed, and the directory (with anything the caller
    put beside the key, such as the run's known_hosts file) deleted, even when the body raises.
    ``base_dir`` must be a path :func:`repolink.git.environment.ssh_command` accepts (no
    whitespace, quotes or ``%``).
    """
    if not isinstance(key, bytes):
        raise TypeError("key must be bytes")
    parent = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
    remove_stale_key_directories(parent)
    directory = Path(tempfile.mkdtemp(prefix=f"{KEY_DIR_PREFIX}{os.getpid()}-", dir=parent))
    key_path = directory / "id"
    try:
        os.chmod(directory, 0o700)
        _write_new_private_file(key_path, key if key.endswith(b"\n") else key + b"\n")
        yield key_path
    finally:
        _wipe(key_path)
        shutil.rmtree(directory, ignore_errors=True)
        if directory.exists():
            log.warning("could not remove the key directory %s", directory)


def remove_stale_key_directories(parent: Path) -> list[Path]:
    """Wipe and remove key directories left by runs whose process died (SIGKILL, power loss).

    A directory is named after the pid of the process that made it; one whose process no
    longer exists, and that belongs to us, can only be a leftover. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        candidates = list(parent.glob(f"{KEY_DIR_PREFIX}*-*"))
    except OSError:
        return removed
    for directory in candidates:
        pid_text = directory.name[len(KEY_DIR_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or process_exists(int(pid_text)):
            continue
        try:
            if directory.lstat().st_uid != os.getuid() or not directory.is_dir():
                continue
        except OSError:
            continue
        _wipe(directory / "id")
        shutil.rmtree(directory, ignore_errors=True)
        log.warning("removed a key directory left by dead process %s", pid_text)
        removed.append(directory)
    return removed


def process_exists(pid: int) -> bool:
    """Whether a process with this id runs on this machine (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_new_private_file(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only narrow, but be exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _wipe(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        size = os.fstat(fd).st_size
        os.write(fd, bytes(size))
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        path.unlink()


def scrub(text: str, *, secrets_paths: Iterable[Path]) -> str:
    """``text`` with each of ``secrets_paths`` (pass the run's temp directories) replaced by
    ``<tmp>``, every line that looks like key material removed, and no terminal control
    sequences: a remote writes this text, and it is printed and stored."""
    text = strip_terminal_controls(text)
    paths: set[str] = set()
    for path in secrets_paths:
        for spelling in (str(path), os.path.realpath(path)):
            if spelling.strip("/"):
                paths.add(spelling.rstrip("/"))
    for spelling in sorted(paths, key=len, reverse=True):
        text = text.replace(spelling, "<tmp>")
    return "".join(line for line in text.splitlines(keepends=True) if not _looks_like_key(line))


def _looks_like_key(line: str) -> bool:
    if any(marker in line for marker in _KEY_LINE_MARKERS):
        return True
    # Object ids are long hex runs; key bodies are base64 and always have non-hex letters.
    return any(not _HEX_ONLY.fullmatch(run) for run in _BASE64_RUN.findall(line))
