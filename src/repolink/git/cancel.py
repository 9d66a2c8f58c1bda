"""A runner for one piece of work that can be cancelled: every process it starts stops then.

A server's worker hands a fetch a :class:`CancellableRunner` around the application's runner;
when the server stops and the fetch must end, setting its event stops whatever git or ssh
process of that fetch is running (SIGTERM to its group, then SIGKILL, as for a timeout) and
raises :class:`repolink.errors.GitError` ``cancelled`` through the fetch, and no new process
starts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from repolink.errors import GitError
from repolink.git.runner import CANCELLED, DEFAULT_KILL_GRACE, CompletedRun, GitRunner

__all__ = ["CANCELLED", "CancellableRunner"]


class CancellableRunner:
    """A runner whose every :meth:`run` stops when ``cancel`` is set: what one cancellable
    piece of work (a fetch run by a server's worker) hands to the code that starts its
    processes, so none of them outlives the cancel. Everything else goes to ``inner``."""

    def __init__(self, inner: GitRunner, cancel: threading.Event) -> None:
        self.inner = inner
        self.cancel = cancel

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
        if self.cancel.is_set():
            raise GitError(CANCELLED, "the work was cancelled", "it is run again when the work is")
        return self.inner.run(
            argv,
            env=env,
            cwd=cwd,
            timeout=timeout,
            input=input,
            on_stderr_line=on_stderr_line,
            on_stdout=on_stdout,
            kill_grace=kill_grace,
            cancel=cancel or self.cancel,
        )

    async def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None
    ) -> asyncio.subprocess.Process:
        return await self.inner.spawn(argv, env=env, cwd=cwd)

    async def terminate(
        self, process: asyncio.subprocess.Process, *, grace: float = DEFAULT_KILL_GRACE
    ) -> int:
        return await self.inner.terminate(process, grace=grace)

    def run_attached(self, argv: Sequence[str], *, env: Mapping[str, str]) -> int:
        return self.inner.run_attached(argv, env=env)

    def replace_process(self, argv: Sequence[str], *, env: Mapping[str, str]) -> NoReturn:
        self.inner.replace_process(argv, env=env)

    def start_detached(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> bool:
        return self.inner.start_detached(argv, env=env, cwd=cwd)
