"""Progress of a fetch, read from git's own ``--progress`` lines on stderr.

git writes ``Receiving objects:  45% (450/1000), 1.20 MiB | 2.00 MiB/s`` and ``Resolving deltas:
100% (10/10), done.`` (the server's phases come prefixed with ``remote:``), rewriting the line with
``\\r``; :meth:`repolink.git.runner.HardenedRunner.run` already splits at ``\\r``. Indexing reports
itself as the phase ``Indexing commits`` with a count and no total.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

INDEXING = "Indexing commits"

_LINE = re.compile(
    r"^(?P<remote>remote: )?(?P<phase>[A-Z][A-Za-z ]{2,40}):\s+"
    r"(?:(?P<percent>\d{1,3})% \((?P<done>\d+)/(?P<total>\d+)\)|(?P<count>\d+))"
)


@dataclass(frozen=True)
class FetchProgress:
    """One step of a fetch: ``phase`` as git names it (``Receiving objects`` …), how far."""

    phase: str
    done: int
    total: int | None = None
    percent: int | None = None
    remote: bool = False


ProgressCallback = Callable[[FetchProgress], None]


def parse_progress_line(line: str) -> FetchProgress | None:
    """The progress a stderr line reports, or ``None`` for any other line."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    phase = match["phase"].strip()
    remote = match["remote"] is not None
    if match["percent"] is not None:
        return FetchProgress(
            phase,
            done=int(match["done"]),
            total=int(match["total"]),
            percent=min(int(match["percent"]), 100),
            remote=remote,
        )
    return FetchProgress(phase, done=int(match["count"]), remote=remote)
