"""A runner that records every process it starts, for tests that ask what repolink ran.

:class:`RecordingRunner` implements :class:`repolink.git.runner.GitRunner` by handing every call
to a real :class:`~repolink.git.runner.HardenedRunner`: the processes are real and hardened as
always; the test only sees their argv, environment and working directory (``records``), in the
order they started, from whichever thread started them. Give it to the application
(``Repolink(settings, store=store, runner=recording)``, or ``Platform(..., runner=recording)``).

``before_run`` is called with each record of :meth:`RecordingRunner.run` just before the process
starts, on the thread that starts it; it may return another argv to run instead (a test that
makes git speak an older protocol, say). ``after_run`` sees the record and the finished run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from repolink.git.runner import DEFAULT_KILL_GRACE, CompletedRun, GitRunner, HardenedRunner


@dataclass(frozen=True)
class RecordedRun:
    """One process started: how (``run``, ``spawn``, ``run_attached``, ``replace_process`` or
    ``start_detached``), its argv, its whole environment, its working directory."""

    kind: str
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path | None = None


BeforeRun = Callable[[RecordedRun], Sequence[str] | None]
AfterRun = Callable[[RecordedRun, CompletedRun], None]


class RecordingRunner:
    """A :class:`GitRunner` recording every process before a real runner starts it."""

    def __init__(
        self,
        inner: GitRunner | None = None,
        *,
        before_run: BeforeRun | None = None,
        after_run: AfterRun | None = None,
    ) -> None:
        self.inner: GitRunner = inner if inner is not None else HardenedRunner()
        self.before_run = before_run
        self.after_run = after_run
        self._records: list[RecordedRun] = []
        self._lock = threading.Lock()

    @property
    def records(self) -> list[RecordedRun]:
        """Every process started so far, in order (a copy)."""
        with self._lock:
            return list(self._records)

    def runs(self) -> list[RecordedRun]:
        """The records of :meth:`run` only."""
        return [record for record in self.records if record.kind == "run"]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def _record(
        self, kind: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None
    ) -> RecordedRun:
        record = RecordedRun(kind, tuple(argv), dict(env), cwd)
        with self._lock:
            self._records.append(record)
        return record

    # -- GitRunner -------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        timeout: float,
        input: bytes | None = None,
        on_stderr_line: Callable[[str], None] | None = None,
        on_stdout: Callable[[bytes], None] | None = None,
        kill_grace: float = DEFAULT_KILL_GRACE,
        cancel: threading.Event | None = None,
    ) -> CompletedRun:
        if self.before_run is not None:
            replaced = self.before_run(RecordedRun("run", tuple(argv), dict(env), cwd))
            if replaced is not None:
                argv = replaced
        record = self._record("run", argv, env, cwd)
        result = self.inner.run(
            argv,
            env=env,
            cwd=cwd,
            timeout=timeout,
            input=input,
            on_stderr_line=on_stderr_line,
            on_stdout=on_stdout,
            kill_grace=kill_grace,
            cancel=cancel,
        )
        if self.after_run is not None:
            self.after_run(record, result)
        return result

    async def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None
    ) -> asyncio.subprocess.Process:
        self._record("spawn", argv, env, cwd)
        return await self.inner.spawn(argv, env=env, cwd=cwd)

    async def terminate(
        self, process: asyncio.subprocess.Process, *, grace: float = DEFAULT_KILL_GRACE
    ) -> int:
        return await self.inner.terminate(process, grace=grace)

    def run_attached(self, argv: Sequence[str], *, env: Mapping[str, str]) -> int:
        self._record("run_attached", argv, env, None)
        return self.inner.run_attached(argv, env=env)

    def replace_process(self, argv: Sequence[str], *, env: Mapping[str, str]) -> NoReturn:
        self._record("replace_process", argv, env, None)
        self.inner.replace_process(argv, env=env)

    def start_detached(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> bool:
        self._record("start_detached", argv, env, cwd)
        return self.inner.start_detached(argv, env=env, cwd=cwd)
