"""What one peer may hold of the embedded SSH server (DESIGN.md §5).

OpenSSH bounds unauthenticated connections (``MaxStartups``), the time to log in
(``LoginGraceTime``) and sessions per connection (``MaxSessions``); the embedded server does
the same here, and adds what sshd has no word for: git services running at once per key.
The counters live on the event loop of the server and are touched only from it, so they need
no lock. The idle timeout of a git service is enforced by the relay, which sees bytes move.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from repolink.settings import Settings


@dataclass(frozen=True)
class SSHLimits:
    max_startups: int
    """Unauthenticated connections at once; one more is closed on arrival."""
    max_startups_per_source: int
    """Unauthenticated connections at once from one source address."""
    login_grace_time: float
    """Seconds a client has to authenticate."""
    max_connections: int
    """Connections at once, authenticated or not."""
    max_sessions: int
    """Sessions (channels) open at once on one connection."""
    max_processes_per_key: int
    """git services running at once for one key, over all its connections."""
    idle_timeout: float
    """Seconds a git service may move no byte, either way, before it is stopped."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SSHLimits:
        return cls(
            max_startups=settings.ssh_max_startups,
            max_startups_per_source=settings.ssh_max_startups_per_source,
            login_grace_time=settings.ssh_login_grace_time,
            max_connections=settings.ssh_max_connections,
            max_sessions=settings.ssh_max_sessions,
            max_processes_per_key=settings.ssh_max_processes_per_key,
            idle_timeout=settings.ssh_idle_timeout,
        )


class Admission:
    """One admitted connection's place in the :class:`ConnectionGate`; each of its two steps
    counts once, however often it is reported."""

    def __init__(self, gate: ConnectionGate, source: str) -> None:
        self._gate = gate
        self.source = source
        self._authenticated = False
        self._closed = False

    def authenticated(self) -> None:
        if not self._authenticated and not self._closed:
            self._authenticated = True
            self._gate.left_startup(self.source)

    def closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._authenticated:
            self._gate.left_startup(self.source)
        self._gate.connection_closed()


class ConnectionGate:
    """Counts connections as they arrive, log in and close.

    :meth:`admit` is asked when the TCP connection is accepted, before the SSH handshake has
    cost anything: a connection over a cap is closed at once, so half-open connections cannot
    use up the server's descriptors or starve the clients that authenticate.
    """

    def __init__(self, limits: SSHLimits) -> None:
        self._limits = limits
        self.connections = 0
        self.startups = 0
        self._startups_by_source: Counter[str] = Counter()
        self.refused = 0
        self._reported = 0
        self._reported_at: float | None = None

    def admit(self, source: str) -> Admission | str:
        """A place for a new connection from ``source``; or, when a cap is reached, the
        setting that sets it (and the connection is counted as refused)."""
        limits = self._limits
        cap = None
        if self.connections >= limits.max_connections:
            cap = "REPOLINK_SSH_MAX_CONNECTIONS"
        elif self.startups >= limits.max_startups:
            cap = "REPOLINK_SSH_MAX_STARTUPS"
        elif self._startups_by_source[source] >= limits.max_startups_per_source:
            cap = "REPOLINK_SSH_MAX_STARTUPS_PER_SOURCE"
        if cap is not None:
            self.refused += 1
            return cap
        self.connections += 1
        self.startups += 1
        self._startups_by_source[source] += 1
        return Admission(self, source)

    def refusals_to_report(self, now: float, every: float) -> int:
        """Refusals not reported yet, when a report is due — the first refusal, then at most
        one report per ``every`` seconds, so a flood is told without filling the log; else 0."""
        if self._reported_at is not None and now - self._reported_at < every:
            return 0
        count, self._reported = self.refused - self._reported, self.refused
        self._reported_at = now
        return count

    def connection_closed(self) -> None:
        self.connections -= 1

    def left_startup(self, source: str) -> None:
        """A connection from ``source`` authenticated or closed before it did."""
        self.startups -= 1
        self._startups_by_source[source] -= 1
        if self._startups_by_source[source] <= 0:
            del self._startups_by_source[source]


class KeyProcesses:
    """git services running at once, per key fingerprint."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._running: Counter[str] = Counter()

    def start(self, fingerprint: str) -> bool:
        """Count one more service of ``fingerprint`` in; ``False`` (and nothing counted) when
        the key runs as many as it may."""
        if self._running[fingerprint] >= self._limit:
            return False
        self._running[fingerprint] += 1
        return True

    def finished(self, fingerprint: str) -> None:
        self._running[fingerprint] -= 1
        if self._running[fingerprint] <= 0:
            del self._running[fingerprint]

    def running(self, fingerprint: str) -> int:
        return self._running[fingerprint]
