"""Known hosts as user operations: scan, trust, list and remove SSH host keys.

The trust store itself — shipped pins, stored keys, the rules of trust, known_hosts rendering —
is the core library :mod:`repolink.knownhosts`, which fetches and checkouts use inside their own
transactions. This service is what adapters call: each method owns its transaction, and
:meth:`KnownHostService.trust` contacts the server between two transactions, never inside
one (a scan can take as long as the connect timeout).

A scan on a client's behalf (the HTTP API) passes a :class:`~repolink.platform.targets.
TargetPolicy`: the target must then be a public address, or one in the operator's allowed
networks, unless it is the server's own built-in host. A name is resolved and every address it
has is judged, and the scan goes to the address judged, so a second DNS answer cannot point it
elsewhere. The operator's own commands (the CLI) pass none.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from repolink import knownhosts
from repolink.errors import ValidationError
from repolink.knownhosts import ScannedHostKey, Scanner, TrustedHostKey, TrustOutcome
from repolink.knownhosts.hostport import check_port, display_name, normalize_host
from repolink.knownhosts.service import check_trust, remove_by_id, store_trust
from repolink.netpolicy import ALLOWED_NETWORKS_SETTING, IPAddress, NetworkPolicy, host_address
from repolink.platform.targets import TargetPolicy
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

    def scan(
        self,
        host: str,
        port: int = 22,
        *,
        targets: TargetPolicy | None = None,
    ) -> list[ScannedHostKey]:
        """The host keys ``host:port`` presents. Trusts nothing and touches no database.
        With ``targets``, a host it refuses is ``host_key_scan_forbidden`` (module text)."""
        return self._scan(host, port, targets)

    def trust(
        self,
        host: str,
        port: int,
        fingerprint: str,
        *,
        force: bool = False,
        targets: TargetPolicy | None = None,
    ) -> TrustOutcome:
        """Trust the key of ``host:port`` whose SHA256 is ``fingerprint``, if the server
        presents it; see :func:`repolink.knownhosts.trust` for the rules and the errors, and
        :meth:`scan` for ``targets``."""
        with self._store().session() as session:
            check = check_trust(session, host, port, fingerprint, force=force)
        if check.trusted is not None:
            return TrustOutcome(check.trusted, created=False)
        presented = self._scan(check.host, check.port, targets)
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

    def remove_by_id(self, key_id: int) -> TrustedHostKey:
        """Remove the stored key with this id (``host_key_not_found`` if none)."""
        with self._store().session() as session:
            return remove_by_id(session, key_id)

    def _scan(self, host: str, port: int, targets: TargetPolicy | None) -> list[ScannedHostKey]:
        host, port = normalize_host(host), check_port(port)
        if targets is None or targets.is_own_host(host, port):
            return self._scanner(host, port)
        address = _checked_address(targets.policy, host, port)
        # The scan goes to the address judged; what it found is reported for the host asked.
        keys = self._scanner(address.compressed, port)
        return [ScannedHostKey(host, port, key.key) for key in keys]


def _checked_address(policy: NetworkPolicy, host: str, port: int) -> IPAddress:
    """The address to scan ``host`` at, every address of it allowed by ``policy``."""
    refusal = policy.host_refusal(host)
    if refusal is not None:
        raise _forbidden(host, port, refusal)
    literal = host_address(host)
    addresses = [literal] if literal is not None else _resolve(host, port)
    for address in addresses:
        refusal = policy.address_refusal(address)
        if refusal is not None:
            # One refused address is enough: which one a connection gets is DNS's choice.
            raise _forbidden(host, port, refusal)
    return addresses[0]


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        found = []
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = host_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        # The client's own input names nothing: bad input (400), where the operator's scan of
        # a name that stopped resolving is an operation that failed (GitError, as keyscan's).
        raise ValidationError(
            "dns_failed",
            f"the host name {host} cannot be resolved",
            "check the spelling of the host, and the server's DNS",
        )
    return addresses


def _forbidden(host: str, port: int, refusal: str) -> ValidationError:
    name = display_name(host, port)
    log.info("refused a host key scan of %s: %s", name, refusal)
    return ValidationError(
        "host_key_scan_forbidden",
        f"{name} is {refusal}; the server scans public addresses only",
        "give a host on a public address, or have the operator allow its network in "
        f"{ALLOWED_NETWORKS_SETTING} (comma-separated CIDRs, e.g. 10.0.0.0/8)",
        context={"host": host, "name": name, "setting": ALLOWED_NETWORKS_SETTING},
    )
