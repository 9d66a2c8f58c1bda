"""A push to this server's own built-in host queues the fetches of the projects connected to it.

The built-in host and the platform share one process and one database in ``repolink serve``:
after a push, every project whose connection URL names the pushed repository *on this
server* gets a fetch queued (trigger ``push``) directly — no webhook, no HTTP round trip.
Projects on other servers still hear of it through the host's signed webhooks.

"On this server" is decided on the URL as the platform will dial it
(:func:`repolink.repo_urls.repository_address`): the host of the server's SSH URL
(``ssh://git@HOST:PORT``) and its port, the loopback names too when that host is a loopback
address, and the repository's ``workspace/slug`` with or without ``.git``, in any case.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from repolink.errors import URLError
from repolink.repo_urls import RepositoryAddress, path_address, repository_address
from repolink.store.models.platform import RepositoryConnection
from repolink.urls import parse_ssh_url

log = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class ServerAddress:
    """The names and SSH port under which clients reach this server's built-in host."""

    hosts: frozenset[str]
    port: int | None
    """``None``: the default SSH port 22."""

    @classmethod
    def from_ssh_url_base(cls, ssh_url_base: str) -> ServerAddress | None:
        """From ``ssh://git@HOST[:PORT]`` (the server's clone URL base); ``None`` if unreadable."""
        try:
            url = parse_ssh_url(f"{ssh_url_base.rstrip('/')}/workspace/repository.git")
        except URLError:
            log.warning("the SSH URL base of this server cannot be read; pushes queue no fetch")
            return None
        hosts = {url.host}  # lower-case, and port 22 is None (parse_ssh_url)
        if _is_loopback(url.host):
            hosts |= _LOOPBACK_NAMES
        return cls(frozenset(hosts), url.port)

    def names(self, address: RepositoryAddress, repository: RepositoryAddress) -> bool:
        """Whether ``address`` (a connection's URL, an SSH one naming its host) is
        ``repository`` on this server."""
        return (
            address.ssh
            and address.host is not None
            and any(
                RepositoryAddress(host, self.port, repository.path, ssh=True).matches(address)
                for host in self.hosts
            )
        )


def connections_of_hosted(session: Session, full_name: str, server: ServerAddress) -> list[str]:
    """The ids of the connections whose URL names hosted repository ``full_name`` on ``server``."""
    repository = path_address(full_name)
    if repository is None:
        return []
    found = []
    for connection_id, url in session.execute(
        select(RepositoryConnection.id, RepositoryConnection.url)
    ):
        address = repository_address(url)
        if address is not None and server.names(address, repository):
            found.append(connection_id)
    return found


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
