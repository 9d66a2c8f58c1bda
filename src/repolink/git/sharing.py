"""Where fetches share SSH connections: one OpenSSH control socket per (user, host, port, key).

Fast refresh reuses the SSH connection of the previous fetch (``ControlMaster=auto``,
``ControlPersist``): the ls-remote that decides whether to fetch and the fetch itself then
cost no new handshake. The socket lives in a directory only we can read and write, named by a
digest of the data directory, user, host, port, the deploy key's fingerprint and the run's
known_hosts text — so a connection is only ever reused by a run that would have logged in as
the same user, verified the same host keys and authenticated with the same key. ssh needs the
socket path short (it binds it with a suffix in a 108-byte ``sun_path``): when the data
directory is too deep, a private directory under the system temp directory is used instead;
when neither is usable, sharing is off.

Lifetime of the shared connection (the master), as proven by
``tests/platform/test_platform_sharing.py``:

- The first ssh of a run that finds no live master becomes one: it authenticates with the run's key
  file, then (``ControlPersist``) forks the master into the background in a session of its own, with
  its standard streams on /dev/null. So :meth:`repolink.git.runner.HardenedRunner.run`, which stops
  whatever is left of the git command's process group when git exits (architecture.md#security),
  does not reach it, and no pipe of the run stays open; the ssh that started it finishes its command
  as a client of that master, like every later one.
- The master outlives the run and its process — a fetch in a new process reuses it — and
  exits after ``repolink.git.environment.CONTROL_PERSIST`` without a client, when the server closes
  the connection, or after ``ServerAliveCountMax`` unanswered keepalives.
- It needs the key only to authenticate, once: the run's key file is wiped when the run ends,
  as always, and the master keeps nothing but the authenticated connection. A run that finds
  no master (or a dead socket, which ssh removes) starts a new one with its own key file.
- The socket's name covers the login user, the key fingerprint and the known_hosts text, so
  a rotated key, a changed trust or another user on the same host never rides on an old
  master. A key removed from the repository stops working at the next command all the same
  where the host re-checks access on every command, as the built-in host does
  (architecture.md#security).

:func:`list_refs_through_master` lists the remote's refs as a passenger of a live master
without starting ssh or git (:mod:`repolink.git.sshmux`, :mod:`repolink.git.protocol`): the
refresh that finds nothing new costs one channel on the shared connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from repolink.git.environment import MAX_CONTROL_PATH_BYTES
from repolink.git.protocol import ProtocolError, list_refs, upload_pack_command
from repolink.git.runner import GitRunner
from repolink.git.sshmux import MuxTimeout, MuxUnavailable, NoMaster, passenger
from repolink.settings import Settings
from repolink.urls import SSHURL

log = logging.getLogger(__name__)

CONTROL_DIR = "ssh-control"
SOCKET_NAME = "s"
USED_MARK = "used"
_DIGEST_CHARS = 16
_SSH_SAFE = re.compile(r"/[A-Za-z0-9._/+@-]*")
_PROTOCOL_V2 = "version=2"


def control_path(
    settings: Settings,
    *,
    url: SSHURL,
    key_fingerprint: str,
    known_hosts: str,
    pinned_address: str | None = None,
) -> Path | None:
    """The control socket path for this (user, host, port, key, trust), or ``None``: no
    sharing. ``pinned_address``: the checked address ssh connects to instead of resolving
    the host (:func:`repolink.platform.targets.pinned_address`) — a master opened to one
    address is never reused by a run pinned to another."""
    data_dir = settings.resolved_data_dir
    host, port = url.host_port
    user = url.user or ""
    parts = [str(data_dir), user, host, str(port), key_fingerprint, known_hosts]
    if pinned_address is not None:  # unpinned runs keep the sockets they had
        parts.append(f"pinned:{pinned_address}")
    material = "\0".join(parts)
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    for root in _roots(settings):
        socket = root / digest / SOCKET_NAME
        text = str(socket)
        if not _SSH_SAFE.fullmatch(text) or len(os.fsencode(text)) > MAX_CONTROL_PATH_BYTES:
            continue
        if _private_dir(root) and _private_dir(root / digest):
            _mark_used(root / digest)
            return socket
    log.info("SSH connection sharing is off: no short private directory for its socket")
    return None


def _roots(settings: Settings) -> list[Path]:
    """Where this data directory's control sockets may live, in order of preference: its own
    directory, and the system temp directory only when that one's socket paths are too long
    (a data directory deep in the file system)."""
    roots = [
        settings.resolved_data_dir / CONTROL_DIR,
        Path(tempfile.gettempdir()) / f"repolink-ssh-{os.getuid()}",
    ]
    return [root for root in roots if _fits(root / ("0" * _DIGEST_CHARS) / SOCKET_NAME)]


def _fits(socket: Path) -> bool:
    text = str(socket)
    return bool(_SSH_SAFE.fullmatch(text)) and len(os.fsencode(text)) <= MAX_CONTROL_PATH_BYTES


def _mark_used(directory: Path) -> None:
    """Note that a run uses this connection now (:func:`close_least_used` keeps the newest)."""
    mark = directory / USED_MARK
    try:
        mark.touch(mode=0o600)
        # The time set explicitly, to the nanosecond: the kernel stamps a touch with its coarse
        # clock (a tick of 4-10 ms), and uses within one tick would tie, leaving which one is
        # the least used to the directory's order.
        now = time.time_ns()
        os.utime(mark, ns=(now, now))
    except OSError:
        log.debug("cannot mark %s used", directory)


def control_sockets(settings: Settings) -> list[Path]:
    """Every control socket of this data directory's shared connections that exists now,
    the most recently used first."""
    found: list[tuple[float, Path]] = []
    for root in _roots(settings)[:1]:
        try:
            directories = list(root.iterdir())
        except OSError:
            continue
        for directory in directories:
            socket = directory / SOCKET_NAME
            try:
                if not stat.S_ISSOCK(socket.lstat().st_mode):
                    continue
                used = (directory / USED_MARK).stat().st_mtime
            except OSError:
                continue
            found.append((used, socket))
    return [socket for _, socket in sorted(found, key=lambda item: item[0], reverse=True)]


def close_least_used(
    settings: Settings,
    *,
    keep: int,
    env: Mapping[str, str],
    runner: GitRunner,
    spare: Collection[Path] = (),
    among: Collection[Path] | None = None,
) -> list[Path]:
    """Close the shared connections beyond the ``keep`` most recently used (``ssh -O exit``
    to each master), but none of ``spare`` (a fetch of this process runs on it: ``-O exit``
    would end its git); with ``among``, only those are counted and closed (the temp directory
    may hold other data directories' sockets). The sockets closed. A long-lived server calls
    this so the connections it keeps warm stay bounded in number, as ``ControlPersist`` bounds
    their idle time."""
    sockets = control_sockets(settings)
    if among is not None:
        sockets = [socket for socket in sockets if socket in among]
    closed: list[Path] = []
    for socket in sockets[max(keep, 0) :]:
        if socket in spare:
            continue
        argv = ["ssh", "-F", os.devnull, "-o", f"ControlPath={socket}", "-O", "exit", "repolink"]
        result = runner.run(argv, env=env, timeout=10)
        if result.ok:
            closed.append(socket)
        else:  # not listening any more: ssh leaves the dead socket; it is no connection
            with contextlib.suppress(OSError):
                socket.unlink()
    if closed:
        log.debug("closed %d least recently used shared SSH connections", len(closed))
    return closed


def _private_dir(path: Path) -> bool:
    """``path`` exists as a directory of ours that nobody else may enter."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        log.warning("not sharing SSH connections through %s: not our own directory", path)
        return False
    if stat.S_IMODE(info.st_mode) & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError:
            return False
    return True


def list_refs_through_master(
    control: Path, url: SSHURL, prefixes: tuple[str, ...], *, timeout: float
) -> dict[str, str] | None:
    """The refs under ``prefixes`` of the repository at ``url``, listed on the live master at
    ``control``; ``None`` when anything goes wrong (the caller then runs ``git ls-remote``,
    which also names the error, if there is one). A master that does not answer within
    ``timeout`` raises :class:`repolink.git.sshmux.MuxTimeout`: it may be stalled. No master
    listening — no socket, or one a master left as it exited — raises
    :class:`repolink.git.sshmux.NoMaster`: there is no shared connection to ride."""
    command = upload_pack_command(url)
    if command is None:
        return None
    if not control.exists():
        raise NoMaster("there is no control socket")
    try:
        with passenger(
            control, command, env=[f"GIT_PROTOCOL={_PROTOCOL_V2}"], timeout=timeout
        ) as session:
            refs = list_refs(session, prefixes)
            status = session.wait()
    except MuxTimeout:
        log.info("the shared SSH connection to %s did not answer in time", url.canonical)
        raise
    except NoMaster:
        raise
    except (MuxUnavailable, ProtocolError) as exc:
        log.debug("listing refs on the shared connection failed, running git: %s", exc)
        return None
    if status != 0:
        log.debug("git-upload-pack on the shared connection exited with %d, running git", status)
        return None
    return refs
