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

# Bodies of 50 commits are some 25 KB: a few MB at most, whatever clients ask.
DEFAULT_ENTRIES = 128


class PageCache:
    """A bounded map from (index version, page parameters) to an answered body, the least
    recently used dropped first; safe to share between the request threads."""

    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        self._max_entries = max_entries
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._bodies)

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        with self._lock:
            self._bodies[key] = body
            self._bodies.move_to_end(key)
            while len(self._bodies) > self._max_entries:
                self._bodies.popitem(last=False)
