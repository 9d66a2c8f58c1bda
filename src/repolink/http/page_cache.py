"""The answered bodies of the commit picker's first pages, kept by the state of the index they
were read at (DESIGN.md §7: the first page of 50 is what every client asks for, again and
again, while the index changes only when a fetch or a hide does).

A body is kept under the project's index version
(:meth:`~repolink.platform.commits.CommitService.index_version`: connection id and the
generation the database moves on every change of its commits and refs) and the page's
parameters. The version is read in every request, after the access check, so a commit indexed
or hidden by any process — this server, another, the CLI — is in the very next answer: its
version differs and misses. A body is read after its version, so it shows that version's
index or a newer one, never an older. The cache holds bodies only, never who may read them:
the access check comes first on every request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

# A page of 50 commits is some 25 KB, one of 500 with the longest subjects and names the
# index keeps about 1.5 MB: the cache is bounded by bytes, not entries.
DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class PageCache:
    """A map from (index version, page parameters) to an answered body, bounded by the bytes
    it holds, the least recently used dropped first; safe to share between the request
    threads. A body over a quarter of the bound is not kept."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._bodies)

    @property
    def held_bytes(self) -> int:
        return self._held

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self._max_bytes // 4:
            return
        with self._lock:
            replaced = self._bodies.pop(key, None)
            if replaced is not None:
                self._held -= len(replaced)
            self._bodies[key] = body
            self._held += len(body)
            while self._held > self._max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._held -= len(dropped)
