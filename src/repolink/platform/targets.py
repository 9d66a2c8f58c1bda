"""May a client of the API make this server fetch from a URL? The network policy for
repository URLs (DESIGN.md §5).

A repository URL given through the API must not make the server reach into its own network:
its host is judged by :class:`repolink.netpolicy.NetworkPolicy` — a literal address in any
spelling, the names that are never public, and each address a name resolves to now — unless
it is the server's own built-in Git host, which is always allowed (a platform fetching from
the host it runs beside). A name that does not resolve is not refused here: the fetch then
fails with the diagnosis of a DNS failure, which names the fix.

The operator's own CLI is not a client: it is not checked.

A client's URL is judged again at every connection (:func:`connection_pin`): its host is
resolved once, each address judged, and ssh connects to the address judged — a name cannot
resolve to a public address when given and to 169.254.169.254 when fetched.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from repolink.errors import GitError, ValidationError
from repolink.netpolicy import ALLOWED_NETWORKS_SETTING, NetworkPolicy, host_address
from repolink.platform.probes import Address, resolve
from repolink.store.models.platform import URL_FROM_CLIENT
from repolink.urls import SSHURL

log = logging.getLogger(__name__)

# Long enough for a slow resolver, short enough for a request that waits on it.
RESOLVE_TIMEOUT = 5.0


@dataclass(frozen=True)
class TargetPolicy:
    """The network policy, and the ``(host, port)`` addresses of the built-in host that is
    always allowed (the SSH listener of this server)."""

    policy: NetworkPolicy
    own_hosts: Collection[tuple[str, int]] = ()

    def check(self, url: SSHURL) -> None:
        """Refuse (``repository_url_forbidden``) a URL whose host the policy refuses."""
        host, port = url.host_port
        if self.is_own_host(host, port):
            return
        refusal = self.policy.host_refusal(host)
        if refusal is None and host_address(host) is None:
            refusal = self._resolved_refusal(host, port)
        if refusal is not None:
            raise forbidden(refusal)

    def is_own_host(self, host: str, port: int) -> bool:
        """Whether ``host:port`` reaches the server's own built-in host (always allowed)."""
        return any(_same_host(host, port, own, own_port) for own, own_port in self.own_hosts)

    def _resolved_refusal(self, host: str, port: int) -> str | None:
        try:
            addresses = resolve(host, port, timeout=RESOLVE_TIMEOUT)
        except GitError:
            return None  # unresolvable: nothing to reach; the fetch names the DNS failure
        return addresses_refusal(self.policy, addresses)


def pinned_address(policy: NetworkPolicy, url: SSHURL, *, timeout: float = RESOLVE_TIMEOUT) -> str:
    """The address ssh must connect to for ``url``: its host resolved once, now, and every
    address judged by ``policy`` (``repository_url_forbidden`` when one is refused, as when the
    URL was given); the first, as ssh would try it. A client's name may resolve elsewhere at
    fetch time than when it was given (DNS rebinding): ssh is pinned to what was checked. A
    name that does not resolve is ``dns_failed``, as a fetch names it."""
    host, port = url.host_port
    literal = host_address(host)
    if literal is not None:
        refusal = policy.address_refusal(literal)
        if refusal is not None:
            raise forbidden(refusal)
        return str(literal)
    refusal = policy.host_refusal(host)
    if refusal is not None:
        raise forbidden(refusal)
    addresses = resolve(host, port, timeout=timeout)
    refusal = addresses_refusal(policy, addresses)
    if refusal is not None:
        raise forbidden(refusal)
    return addresses[0].ip


def connection_pin(policy: NetworkPolicy, url: SSHURL, url_origin: str | None) -> str | None:
    """:func:`pinned_address` for a connection whose URL came from an API client; ``None``
    (ssh resolves the host itself) for the operator's URL and for the server's own built-in
    host, which were never subject to the policy."""
    if url_origin != URL_FROM_CLIENT:
        return None
    return pinned_address(policy, url)


def addresses_refusal(policy: NetworkPolicy, addresses: Sequence[Address]) -> str | None:
    """Why a name resolving to ``addresses`` is refused (one of them is), or ``None``."""
    for address in addresses:
        refusal = policy.address_refusal(ipaddress.ip_address(address.ip.split("%")[0]))
        if refusal is not None:
            return f"a name resolving to {refusal}"
    return None


def forbidden(refusal: str) -> ValidationError:
    """The ``repository_url_forbidden`` error for a host that is ``refusal``."""
    log.info("refused a repository URL whose host is %s", refusal)
    return ValidationError(
        "repository_url_forbidden",
        f"the repository URL's host is {refusal}; this server fetches from public "
        "addresses and its own Git host only",
        "give the repository's public SSH address, or have the operator allow its "
        f"network in {ALLOWED_NETWORKS_SETTING} (comma-separated CIDRs, e.g. "
        "10.0.0.0/8)",
        context={"setting": ALLOWED_NETWORKS_SETTING},
    )


def _same_host(host: str, port: int, own: str, own_port: int) -> bool:
    if port != own_port:
        return False
    if host.lower() == own.lower():
        return True
    # A host listening on every address, or on loopback, is reached by any loopback name.
    own_address = host_address(own)
    listens_locally = own_address is not None and (
        own_address.is_unspecified or own_address.is_loopback
    )
    return listens_locally and _is_loopback(host)


def _is_loopback(host: str) -> bool:
    address = host_address(host)
    if address is not None:
        return address.is_loopback
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def own_hosts(ssh_url_base: str | None) -> list[tuple[str, int]]:
    """The ``(host, port)`` of the server's own SSH host, from ``ssh://git@host:port``."""
    if not ssh_url_base:
        return []
    try:
        parts = urlsplit(ssh_url_base)
        host, port = parts.hostname, parts.port or 22
    except ValueError:
        return []
    return [(host, port)] if host else []
