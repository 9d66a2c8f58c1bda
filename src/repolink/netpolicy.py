"""Which network addresses repolink may connect to on a client's behalf (DESIGN.md §5).

A URL given by an API client (a webhook today, a repository URL of the platform API later)
must not make the server reach into its own network: loopback, private, link-local (the cloud
metadata service at 169.254.169.254), shared (CGNAT), multicast, unspecified and reserved
addresses are refused — in any spelling: IPv4-mapped or otherwise embedded in IPv6, and the
numeric forms libc's ``inet_aton`` accepts (``2130706433``, ``0x7f.1``, ``0177.0.0.1``), since
that is how the connection would read them. An operator may allow named networks
(``allowed_networks``: comma-separated CIDRs).

The other way round, :func:`forwarded_client` is where a request came from: its peer, or the
address an operator's trusted proxy (``trusted_proxies``) names in ``X-Forwarded-For``.

A host *name* can only be judged once resolved: :meth:`NetworkPolicy.host_refusal` refuses the
names that are never public (``localhost``, the metadata names) when a URL is configured, and
:meth:`NetworkPolicy.address_refusal` judges each resolved address when connecting — and the
connection goes to the address judged, so a DNS answer cannot change in between.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_NETWORKS_SETTING = "REPOLINK_ALLOWED_NETWORKS"

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_METADATA_ADDRESS = ipaddress.IPv4Address("169.254.169.254")
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
# What inet_aton reads as an IPv4 address: one to four parts, decimal, octal or hex.
_NUMERIC_HOST = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]*|[0-9]+)){0,3}")


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, ::1/128"`` as networks; a plain address is a network of one.

    Raises ``ValueError`` naming the entry that is not a network.
    """
    networks = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry[:60]!r} is not an address or CIDR network") from None
    return tuple(networks)


def host_address(host: str) -> IPAddress | None:
    """The address a URL's host names literally, in any spelling a connection would accept;
    ``None`` for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, compatible)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: IPAddress) -> str | None:
    """What makes ``address`` a place no client may send us: ``None`` for a public one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = _kind(embedded)
        return f"{inner} (inside an IPv6 address)" if inner else None
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (CGNAT)"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


class NetworkPolicy:
    """Refuses non-public targets, except in the networks the operator allowed."""

    def __init__(self, allowed: Iterable[IPNetwork] = ()) -> None:
        self.allowed = tuple(allowed)

    @classmethod
    def from_text(cls, text: str) -> NetworkPolicy:
        return cls(parse_networks(text))

    def _allows(self, address: IPAddress) -> bool:
        return _among(address, self.allowed)

    def address_refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be connected to (``"a loopback address"``), or ``None``."""
        if self._allows(address):
            return None
        kind = _kind(address)
        return f"a {kind} address" if kind else None

    def host_refusal(self, host: str) -> str | None:
        """Why a URL naming ``host`` is refused before anything is resolved, or ``None``.

        A name that is not refused here is judged again on each address it resolves to.
        """
        address = host_address(host)
        if address is not None:
            return self.address_refusal(address)
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return None if self._allows(_LOOPBACK) else "a loopback name"
        if name in _METADATA_NAMES:
            return None if self._allows(_METADATA_ADDRESS) else "a cloud metadata name"
        return None


def forwarded_client(
    peer: str, forwarded_for: Iterable[str], trusted_proxies: Iterable[IPNetwork]
) -> str:
    """The address a request came from: ``peer`` (the connection's other end), or — only when
    the peer is one of the operator's ``trusted_proxies`` — the address those proxies name in
    ``X-Forwarded-For`` (``forwarded_for``: the header's values, in order).

    The header is read from its right end, where the peer appended what it saw, past every
    trusted proxy, to the first address no trusted proxy holds: anything left of it was
    written by the client and may be forged. An entry that is not an address stops the walk
    at the last hop read (a proxy trusted to append an address would not write anything else).
    """
    trusted = tuple(trusted_proxies)
    client = peer
    if not trusted or not _among(_plain_address(peer), trusted):
        return client
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = _plain_address(hop)
        if address is None:
            break
        client = str(address)
        if not _among(address, trusted):
            break
    return client


def _plain_address(text: str) -> IPAddress | None:
    """``text`` as an address written plainly (no port, no brackets), or ``None``."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _among(address: IPAddress | None, networks: tuple[IPNetwork, ...]) -> bool:
    if address is None:
        return False
    embedded = _embedded_ipv4(address)
    candidates = [address] if embedded is None else [address, embedded]
    return any(
        candidate.version == network.version and candidate in network
        for candidate in candidates
        for network in networks
    )
