"""Known hosts as user operations: scan, trust, list and remove SSH host keys.

The trust store itself — shipped pins, stored keys, the rules of trust, known_hosts rendering —
is the core library :mod:`repolink.knownhosts`, which fetches and checkouts use inside their own
transactions. This service is what adapters call: each method owns its transaction, and
:meth:`KnownHostService.trust` contacts the server between two transactions, never inside
one (a scan can take as long as the connect timeout).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from repolink import knownhosts
from repolink.knownhosts import ScannedHostKey, Scanner, TrustedHostKey, TrustOutcome
from repolink.knownhosts.service import check_trust, store_trust
from repolink.settings import Settings
from repolink.store import Store

log = logging.getLogger(__name__)


class KnownHostService:
    """The platform's trusted SSH host keys, for ``repolink hostkeys`` and the like.

    ``store`` is asked for only when the database is needed: a scan needs none, and ``hostkeys
    scan`` on a machine without a data directory must not create one. ``scanner`` contacts a
    server for its host keys: the application gives :func:`repolink.git.keyscanner_for`
    (``ssh-keyscan`` through its runner, with the settings' connect timeout).
    """

    def __init__(
        self,
        settings: Settings,
        store: Callable[[], Store],
        *,
        scanner: Scanner,
    ) -> None:
        self._settings = settings
        self._store = store
        self._scanner = scanner

    def scan(self, host: str, port: int = 22) -> list[ScannedHostKey]:
        """The host keys ``host:port`` presents. Trusts nothing and touches no database."""
        return self._scanner(host, port)

    def trust(self, host: str, port: int, fingerprint: str, *, force: bool = False) -> TrustOutcome:
        """Trust the key of ``host:port`` whose SHA256 is ``fingerprint``, if the server
        presents it; see :func:`repolink.knownhosts.trust` for the rules and the errors."""
        with self._store().session() as session:
            check = check_trust(session, host, port, fingerprint, force=force)
        if check.trusted is not None:
            return TrustOutcome(check.trusted, created=False)
        presented = self._scanner(check.host, check.port)
        with self._store().session() as session:
            return store_trust(session, check, presented, force=force)

    def list_known_hosts(self) -> list[TrustedHostKey]:
        """Every shipped pin and every stored key, ordered by host and port, pins first."""
        with self._store().session() as session:
            return knownhosts.list_known_hosts(session)

    def remove(
        self, host: str, port: int = 22, fingerprint: str | None = None
    ) -> list[TrustedHostKey]:
        """Remove the stored key with ``fingerprint`` of ``host:port``, or all its stored keys
        (shipped pins cannot be removed)."""
        with self._store().session() as session:
            return knownhosts.remove(session, host, port, fingerprint)
