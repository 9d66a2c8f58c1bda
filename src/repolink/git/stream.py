"""A git command's stdout as batches of lines, read while git is still writing.

:meth:`repolink.git.runner.GitRunner.run` hands stdout chunks to a callback on a reader thread; here
that callback cuts them into lines and passes batches through a small bounded queue to the caller's
thread. Memory stays bounded whatever the size of the output (git blocks on a full pipe while the
caller is busy), the caller's thread is the only one touching the database, and leaving the ``with``
block early stops git (its process group) at once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType

from repolink.git.runner import CompletedRun, GitRunner

log = logging.getLogger(__name__)

DEFAULT_BATCH_LINES = 1000
_QUEUE_BATCHES = 4
_PUT_POLL = 0.05


class _Stopped(Exception):
    """Raised inside the runner's reader thread to stop git when the caller has had enough."""


class LineStream:
    """``with LineStream(argv, …) as lines: for batch in lines: …`` then ``lines.result``.

    Lines are ``bytes`` without their ``\\n``. :attr:`result` is the finished run (check it);
    it is ``None`` when the caller stopped reading early.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        timeout: float,
        runner: GitRunner,
        input: bytes | None = None,
        batch_lines: int = DEFAULT_BATCH_LINES,
    ) -> None:
        self._argv = list(argv)
        self._env = env
        self._timeout = timeout
        self._runner = runner
        self._input = input
        self._batch_lines = batch_lines
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=_QUEUE_BATCHES)
        self._stop = threading.Event()
        self._pending = b""
        self._batch: list[bytes] = []
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, name="platform-stream", daemon=True)
        self.result: CompletedRun | None = None

    def __enter__(self) -> LineStream:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(timeout=_PUT_POLL)
        if exc_type is None and self._failure is not None:
            raise self._failure

    def __iter__(self) -> Iterator[list[bytes]]:
        while True:
            batch = self._queue.get()
            if batch is None:
                if self._failure is not None:
                    raise self._failure
                return
            yield batch

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            return

    def _produce(self) -> None:
        try:
            run = self._runner.run(
                self._argv,
                env=self._env,
                timeout=self._timeout,
                input=self._input,
                on_stdout=self._on_stdout,
            )
            if self._pending:
                self._batch.append(self._pending)
                self._pending = b""
            if self._batch:
                self._put(self._batch)
            self.result = run
        except _Stopped:
            log.debug("stopped %s early: the reader had enough", self._argv[0])
        except BaseException as exc:  # handed to the caller's thread
            self._failure = exc
        finally:
            self._put_final()

    def _on_stdout(self, chunk: bytes) -> None:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            self._batch.append(line)
            if len(self._batch) >= self._batch_lines:
                self._put(self._batch)
                self._batch = []

    def _put(self, batch: list[bytes]) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                self._queue.put(batch, timeout=_PUT_POLL)
                return
            except queue.Full:
                continue

    def _put_final(self) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(None, timeout=_PUT_POLL)
                return
            except queue.Full:
                continue
