"""What an anonymous HTTP peer can hold of the server: a bounded time and one of a bounded
number of connections (DESIGN.md §5, listeners).

uvicorn never times out a request that is still arriving: 1100 connections that sent half a
request and stopped held the host at its descriptor limit, and SSH clones failed with it. The
:class:`ConnectionGuard` gives each connection a deadline for its request, headers and body
(from the moment it opens, or its previous answer was sent), and caps the open connections:
when the cap is reached, the connection that has waited longest without completing a request
makes way for the new one; when every connection is busy with a request, the new one is
answered 503 ``server_busy``.

The protocol is uvicorn's httptools one (C parsing: the h11 protocol's pure-Python parsing and
framing was a tenth of what a commit page cost the server, DESIGN.md §7).

uvicorn is imported by this module: the server imports it only when it starts the HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from repolink.http.errors import error_body

log = logging.getLogger(__name__)


def _busy_answer() -> bytes:
    body = json.dumps(
        error_body(
            "server_busy",
            "the server has as many HTTP connections open as it accepts",
            "retry in a moment; an operator may raise REPOLINK_HTTP_MAX_CONNECTIONS",
        )
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "content-type: application/json\r\n"
        "connection: close\r\n"
        "retry-after: 1\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class ConnectionGuard:
    """The open connections of one server, and which of them wait for a request to arrive."""

    def __init__(self, *, request_timeout: float, max_connections: int) -> None:
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._open: set[GuardedProtocol] = set()
        # Insertion order is the order they began to wait: the first waited longest.
        self._waiting: dict[GuardedProtocol, None] = {}

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def admit(self, connection: GuardedProtocol) -> bool:
        """Count ``connection`` in, making room by evicting the longest waiter if needed;
        ``False`` when every open connection is busy with a request."""
        if len(self._open) >= self.max_connections:
            if not self._waiting:
                return False
            oldest = next(iter(self._waiting))
            self.forget(oldest)
            oldest.close("evicted to make room for a new connection")
        self._open.add(connection)
        return True

    def waiting(self, connection: GuardedProtocol) -> None:
        self._waiting.pop(connection, None)
        self._waiting[connection] = None

    def served(self, connection: GuardedProtocol) -> None:
        self._waiting.pop(connection, None)

    def forget(self, connection: GuardedProtocol) -> None:
        self._open.discard(connection)
        self._waiting.pop(connection, None)

    def protocol(self) -> type[GuardedProtocol]:
        """uvicorn's HTTP protocol class (``uvicorn.Config(http=…)``) for this guard."""
        return type("GuardedHttpToolsProtocol", (GuardedProtocol,), {"guard": self})


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, held to its :class:`ConnectionGuard`'s deadline and cap."""

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            log.warning("HTTP connection refused: all %d are busy", self.guard.max_connections)
            transport.write(_busy_answer())
            transport.close()
            return
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def close(self, why: str) -> None:
        self._cancel_deadline()
        if not self.transport.is_closing():
            # Debug only: an attack closes thousands, and the log must not grow with it.
            log.debug("HTTP connection from %s closed: %s", self._peer(), why)
            self.transport.close()

    def _track(self) -> None:
        """Start the deadline when a request begins to arrive, stop it once it has arrived."""
        if self.transport.is_closing():
            self.guard.forget(self)
            self._cancel_deadline()
        elif self._arriving():
            if self._deadline is None:
                self._deadline = self.loop.call_later(
                    self.guard.request_timeout, self._deadline_passed
                )
                self.guard.waiting(self)
        else:
            self._cancel_deadline()
            self.guard.served(self)

    def _arriving(self) -> bool:
        """Whether the peer's side of a request is still arriving: no request yet (or the next
        one on a kept-alive connection), or a body not read to its end — anything but a
        request that has arrived whole and is not answered yet."""
        cycle = self.cycle
        return cycle is None or cycle.response_complete or cycle.more_body

    def _deadline_passed(self) -> None:
        self._deadline = None
        self.guard.forget(self)
        self.close(f"no complete request within {self.guard.request_timeout:g} s")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _peer(self) -> str:
        if not self.client:
            return "an unknown peer"
        host, port = self.client
        return f"{host}:{port}"
