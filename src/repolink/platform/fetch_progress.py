"""A fetch run's progress as git reports it, recorded on its row for the pages to show.

While a worker carries a run out (:func:`repolink.platform.fetch_jobs.execute_run`), git's
progress lines (``Receiving objects:  45% (450/1000)`` …, parsed by
:mod:`repolink.git.progress`) and the indexing count reach a :class:`ProgressRecorder`, which
writes the latest one on the run's row (``fetch_runs.progress``, migration 0023), so any
process can read it: the Repository page polls it through
:meth:`FetchProgressService.of_run`. Writes are bounded: nothing for a fetch that ends within
the ``fetch_progress_interval`` setting (most refreshes: they cost no write), then at once on a
new phase and at most once per interval within one. A failed write is logged and never fails
the fetch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError

from repolink.errors import RepolinkError
from repolink.git.progress import FetchProgress
from repolink.store import Store
from repolink.store.models.fetch_runs import RUN_RUNNING, FetchRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunProgress:
    """The latest progress a run's attempt recorded: git's phase (``Receiving objects`` …,
    ``remote``: the server's), how far (``done`` of ``total``, ``percent``), and the attempt."""

    phase: str
    done: int
    total: int | None
    percent: int | None
    remote: bool
    attempt: int

    def as_dict(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "percent": self.percent,
            "remote": self.remote,
            "attempt": self.attempt,
        }

    @property
    def line(self) -> str:
        """One line as git words it: ``Receiving objects 45% (450/1000)``."""
        prefix = "remote: " if self.remote else ""
        if self.percent is not None and self.total is not None:
            return f"{prefix}{self.phase} {self.percent}% ({self.done}/{self.total})"
        return f"{prefix}{self.phase} {self.done}"

    @classmethod
    def from_stored(cls, stored: Mapping[str, object] | None) -> RunProgress | None:
        if not stored or not isinstance(stored.get("phase"), str):
            return None
        return cls(
            phase=str(stored["phase"]),
            done=_int(stored.get("done")) or 0,
            total=_int(stored.get("total")),
            percent=_int(stored.get("percent")),
            remote=bool(stored.get("remote")),
            attempt=_int(stored.get("attempt")) or 0,
        )


class ProgressRecorder:
    """The ``on_progress`` of one attempt at run ``run_id``: the latest progress on its row."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        attempt: int,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._attempt = attempt
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._written_at: float | None = None
        self._phase: str | None = None

    def __call__(self, progress: FetchProgress) -> None:
        now = self._clock()
        if now - self._started < self._interval:
            return  # a fetch that ends this soon needs no progress shown
        same_phase = progress.phase == self._phase
        if same_phase and self._written_at is not None and now - self._written_at < self._interval:
            return
        self._phase, self._written_at = progress.phase, now
        stored = RunProgress(
            progress.phase,
            progress.done,
            progress.total,
            progress.percent,
            progress.remote,
            self._attempt,
        ).as_dict()
        try:
            with self._store.session() as session:
                session.connection().execute(
                    update(FetchRun)
                    .where(FetchRun.id == self._run_id, FetchRun.status == RUN_RUNNING)
                    .values(progress=stored)
                )
        except (SQLAlchemyError, RepolinkError) as exc:
            log.warning("fetch run %d: its progress was not recorded: %s", self._run_id, exc)


class FetchProgressService:
    """The progress of fetch runs, for adapters that show a running fetch
    (``app.fetch_progress``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def of_run(self, run_id: int) -> RunProgress | None:
        """The latest progress run ``run_id``'s current attempt recorded; ``None``: none yet
        (or the run is gone)."""
        with self._store.reading() as db:
            row = db.execute(_STATEMENT, {"run_id": run_id}).first()
        if row is None:
            return None
        progress = RunProgress.from_stored(row.progress)
        if progress is None or progress.attempt != row.attempts:
            return None  # an earlier attempt's: this one has reported nothing yet
        return progress


_STATEMENT = select(FetchRun.progress, FetchRun.attempts).where(FetchRun.id == bindparam("run_id"))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
