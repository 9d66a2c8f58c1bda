"""A first fetch's commits, indexed while its clone is still running.

A first clone of a large history spends seconds receiving trees and blobs and resolving
deltas, while the commit index needs the commits alone. Beside the clone, the scout fetches
only those: ``git clone --bare --filter=tree:0`` (a partial clone: commits and tags, no trees
and no blobs) into ``<mirror>.scout``, then indexes them there
(:func:`repolink.platform.index.index_mirror`), on the processor time the clone leaves idle.
When the clone is done, the mirror's own index run finds its refs already indexed, or indexes
just what a push changed between the two fetches: the mirror stays the one source of truth.

The scout starts with the clone and first learns how large the history is, from the clone's
progress (the server's counts, or git's receiving count): at least ``scout_min_objects``
objects, and it fetches; fewer, and it gives up, since a small history is indexed in less
time than a second fetch would take. A server enumerating a large history reports nothing
for its first second or so, while a small one reports its size at once: when
:data:`SIZE_WAIT` passes after the connection is up without a report, the scout fetches too,
so its fetch runs while the server is still enumerating for the clone, on the processor the
clone leaves idle then. A clone that ends before the size is known needs no scout.

The scout is an optimisation and nothing depends on it:

- a server that does not serve partial clones is left at once: git warns "filtering not
  recognized by server" before it asks for a pack, and that line stops the scout, which would
  otherwise receive the whole history a second time;
- it rides the clone's shared SSH connection (:mod:`repolink.git.sharing`) and waits
  for it to be up, so a first fetch still opens one connection to the server; a fetch that
  does not share its connection has no scout;
- any failure of its own is logged and forgotten; the clone's failure is the one reported;
- it runs inside the fetch's :class:`repolink.git.remote.Remote`, so its git and ssh get
  the same hardened environment, key file and trusted host keys (architecture.md#security), and the
  fetch waits for it before that run directory is removed;
- no lazy fetch can start from the partial clone: its remote section is removed before it is
  read, and git runs with ``GIT_NO_LAZY_FETCH``;
- its directory is removed when it is done, and by :func:`repolink.git.mirrors.prepare`
  after a fetch that was killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from repolink.git.environment import FSCK_ON_RECEIVE, git_argv
from repolink.git.mirrors import local_env, scout_path
from repolink.git.progress import FetchProgress
from repolink.git.remote import Remote
from repolink.git.runner import LOCAL_GIT_TIMEOUT
from repolink.platform.index import IndexResult
from repolink.settings import Settings

log = logging.getLogger(__name__)

_MASTER_POLL = 0.01
# How long after the shared connection is up the clone may report no size before the scout
# takes the history for a large one (servers report a small history's size at once).
SIZE_WAIT = 0.3
# How much lower than the clone's the scout's scheduling priority is (nice(1) steps).
SCOUT_NICENESS = 10
# What git (fetch-pack) says, in the C locale of every run, when the server has no filter.
_FILTER_REFUSED = "filtering not recognized by server"

IndexRepository = Callable[[Path], IndexResult]


class _FilterRefused(Exception):
    """Raised from git's stderr reader: stops the scout before the server sends a pack."""


class Scout:
    """The scout of one first fetch, for the ``with`` block that clones ``mirror``: feed it
    the clone's progress (:meth:`observe`); leaving the block waits for it to end.

    ``index`` indexes a repository (the scout's partial clone). ``result`` then holds that
    index run, or ``None`` when there was none (a small history, no partial clone served, a
    failure).
    """

    def __init__(
        self, remote: Remote, mirror: Path, index: IndexRepository, *, settings: Settings
    ) -> None:
        self._remote = remote
        self._path = scout_path(mirror)
        self._index = index
        self._settings = settings
        self._stop = threading.Event()  # the clone failed
        self._clone_done = threading.Event()
        self._reported = threading.Event()
        self._large: bool | None = None  # what the clone's progress says, once it says it
        self._thread = threading.Thread(target=self._run, name="platform-scout", daemon=True)
        self.result: IndexResult | None = None

    def __enter__(self) -> Scout:
        if self._settings.scout_min_objects:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._stop.set()  # the clone failed: start nothing, index nothing more
        else:
            self._clone_done.set()
        self._reported.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def new_commits(self) -> int:
        return self.result.new_commits if self.result is not None else 0

    def observe(self, progress: FetchProgress) -> None:
        """Take one progress report of the clone: the first that tells the history's size
        decides whether the scout fetches."""
        if self._large is not None:
            return
        if max(progress.done, progress.total or 0) >= self._settings.scout_min_objects:
            self._large = True
        elif progress.total is not None:
            self._large = False
        else:
            return  # a running count below the threshold: it may grow
        self._reported.set()

    def _run(self) -> None:
        started = time.monotonic()
        _yield_to_the_clone()
        try:
            if self._master_is_up() and self._history_is_large() and self._clone():
                cloned = time.monotonic()
                self.result = self._index(self._path)
                log.debug(
                    "scout of %s: partial clone %.2f s, index %.2f s",
                    self._remote.url.canonical,
                    cloned - started,
                    time.monotonic() - cloned,
                )
        except Exception as exc:  # never the fetch's failure: the clone reports its own
            log.info(
                "scout of %s gave up, the clone indexes everything: %s",
                self._remote.url.canonical,
                self._remote.scrub(str(exc)),
            )
        finally:
            shutil.rmtree(self._path, ignore_errors=True)

    def _master_is_up(self) -> bool:
        """Wait for the clone's ssh to bring the shared connection up (ssh puts its socket
        in place once authenticated), at most the SSH connect timeout."""
        socket = self._remote.control_path
        if socket is None:
            return False
        deadline = time.monotonic() + self._settings.ssh_connect_timeout
        while not socket.exists():
            # A clone that ended without it (ssh could not share) leaves nothing to ride.
            if self._clone_done.is_set() or time.monotonic() > deadline:
                return False
            if self._stop.wait(_MASTER_POLL):
                return False
        return True

    def _history_is_large(self) -> bool:
        """Wait for the clone's progress to tell the history's size, at most
        :data:`SIZE_WAIT`: no report by then means a large history being enumerated."""
        deadline = time.monotonic() + SIZE_WAIT
        while self._large is None:
            if self._stop.is_set() or self._clone_done.is_set():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self._reported.wait(left)
        return self._large and not self._stop.is_set()

    def _clone(self) -> bool:
        shutil.rmtree(self._path, ignore_errors=True)
        self._path.mkdir(mode=0o700)
        argv = git_argv(
            *FSCK_ON_RECEIVE,
            "clone",
            "--bare",
            "--quiet",
            "--filter=tree:0",
            "--no-recurse-submodules",
            "--",
            self._remote.url.git_url,
            str(self._path),
        )
        try:
            run = self._remote.run(argv, on_stderr_line=_stop_on_refused_filter)
        except _FilterRefused:
            log.info("%s serves no partial clone: no scout", self._remote.url.canonical)
            return False
        if not run.ok:
            last_line = run.stderr.strip().rpartition("\n")[2]
            log.info(
                "scout of %s failed: %s", self._remote.url.canonical, self._remote.scrub(last_line)
            )
            return False
        if self._stop.is_set():
            return False  # the clone failed meanwhile: indexing would only delay its report
        self._remote.runner.run(
            git_argv("config", "--remove-section", "remote.origin", git_dir=self._path),
            env=local_env(self._settings),
            timeout=LOCAL_GIT_TIMEOUT,
        ).check("detaching the scout from its remote")
        return True


def _yield_to_the_clone() -> None:
    """Lower this thread's scheduling priority, and so that of the git processes it starts:
    the scout only has the processor time the clone leaves. Linux keeps a nice value per
    thread; elsewhere the scout runs at the normal priority."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SCOUT_NICENESS)


def _stop_on_refused_filter(line: str) -> None:
    if _FILTER_REFUSED in line:
        raise _FilterRefused
