"""The leases of the fetch runs this process carries out, renewed by one thread for them all.

A claimed run is reserved for its worker until its lease ends (:class:`FetchQueue`); while
the fetch runs, the lease is renewed every third of it, so that only a dead worker's run is
ever taken over. One thread per run did that before: started and joined around every fetch,
it cost a refresh that finds nothing new two thread hand-overs — more than the refresh's own
database work on a busy machine. :class:`LeaseKeeper` keeps one thread for every run of its
queue instead; the thread stays a while after the last run ends (the next refresh usually
comes soon) and then exits, so an idle process keeps no thread for it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

from repolink.errors import RepolinkError

log = logging.getLogger(__name__)

__all__ = ["LeaseKeeper"]


class LeaseKeeper:
    """Renews, every ``interval`` seconds, the lease of each run inside :meth:`kept`.

    ``renew(run_id)`` extends a run's lease and says whether the run is still ours to run;
    one that is not is renewed no more. ``linger``: how long the thread waits for a new run
    after the last one ended before it exits.
    """

    def __init__(
        self, renew: Callable[[int], bool], *, interval: float, linger: float | None = None
    ) -> None:
        self._renew = renew
        self._interval = interval
        self._linger = interval if linger is None else linger
        self._changed = threading.Condition()
        self._due: dict[int, float] = {}  # run id → when its lease is renewed next
        self._thread: threading.Thread | None = None

    @property
    def idle(self) -> bool:
        """Whether this keeper has no thread (none started yet, or the last one exited)."""
        with self._changed:
            return self._thread is None

    @contextlib.contextmanager
    def kept(self, run_id: int) -> Iterator[None]:
        """Keep renewing ``run_id``'s lease while the block runs."""
        with self._changed:
            self._due[run_id] = time.monotonic() + self._interval
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-leases", daemon=True)
                self._thread.start()
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._due.pop(run_id, None)
                self._changed.notify_all()

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            with self._changed:
                now = time.monotonic()
                if not self._due:
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= self._linger:
                        # Under the lock that kept() takes: a run added after this is seen
                        # by kept(), which starts a new thread.
                        self._thread = None
                        return
                    self._changed.wait(self._linger - (now - idle_since))
                    continue
                idle_since = None
                due = [run_id for run_id, at in self._due.items() if at <= now]
                if not due:
                    self._changed.wait(min(self._due.values()) - now)
                    continue
                for run_id in due:
                    self._due[run_id] = now + self._interval
            for run_id in due:  # outside the lock: a renewal is a database write
                self._renew_one(run_id)

    def _renew_one(self, run_id: int) -> None:
        try:
            kept = self._renew(run_id)
        except RepolinkError as exc:  # the next renewal may get through
            log.warning("fetch run %d: cannot renew its lease: %s", run_id, exc.code)
            return
        except Exception:  # a bug must not stop the renewal of the other runs
            log.exception("fetch run %d: renewing its lease failed", run_id)
            return
        if not kept:
            with self._changed:
                self._due.pop(run_id, None)
