"""A push to this server's own built-in host queues the fetches of the projects connected to it.

The built-in host and the platform share one process and one database in ``repolink serve``:
after a push, every project whose connection URL names the pushed repository *on this
server* gets a fetch queued (trigger ``push``) directly — no webhook, no HTTP round trip.
Projects on other servers still hear of it through the host's signed webhooks.

In OpenSSH mode (sshd runs ``repolink host shell`` as each key's forced command) the same
happens in the shell process after a push (:func:`queue_after_shell_push`), for the address
``REPOLINK_OPENSSH_URL`` gives. On PostgreSQL, queueing the runs wakes procrastinate's
workers; on SQLite a detached ``repolink host run-fetches`` carries them out, so neither the
push nor a server's 30-second poll of the queue is waited for.

"On this server" is decided on the URL as the platform will dial it
(:func:`repolink.repo_urls.repository_address`): the host of the server's SSH URL
(``ssh://git@HOST:PORT``) and its port, the loopback names too when that host is a loopback
address, and the repository's ``workspace/slug`` with or without ``.git``, in any case.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from repolink.errors import RepolinkError, URLError
from repolink.git.runner import GitRunner
from repolink.jobs.detached import spawn_detached
from repolink.repo_urls import RepositoryAddress, path_address, repository_address
from repolink.settings import Settings
from repolink.store.models.platform import RepositoryConnection
from repolink.urls import parse_ssh_url

log = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# How long the process started after an OpenSSH-mode push waits to see its runs finished: the
# fetch retry policy's backoff (10 + 20 + 40 + 80 s) with room for a run that waits behind
# another fetch of its connection. A run it carries out itself is finished first regardless.
CARRY_OUT_TIMEOUT = 600.0


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


class _QueuedRun(Protocol):
    @property
    def id(self) -> int: ...


class HostedPushRequests(Protocol):
    """What a push needs of the fetch requests (``FetchRequestService``): named here, not
    imported, because that service finds a push's connections through this module."""

    @property
    def workers_elsewhere(self) -> bool: ...

    def request_for_hosted_push(
        self, full_name: str, server: ServerAddress
    ) -> Sequence[_QueuedRun]: ...


def queue_after_shell_push(
    settings: Settings,
    requests: HostedPushRequests,
    full_name: str,
    *,
    runner: GitRunner,
) -> list[int]:
    """OpenSSH mode, after a push to hosted repository ``full_name``: queue (or join) the fetch
    of every connection naming it at ``settings.openssh_url``, and — unless queueing them woke
    the workers of other processes (procrastinate's, on PostgreSQL) — start ``repolink host
    run-fetches`` detached to carry the runs out. The run ids.

    A store error is logged, not raised: the push has succeeded already. The runs stay queued
    when the detached process does not start: a server's worker, or the next push, takes them.
    """
    if settings.openssh_url is None:
        return []
    server = ServerAddress.from_ssh_url_base(settings.openssh_url)
    if server is None:
        return []
    try:
        runs = requests.request_for_hosted_push(full_name, server)
    except RepolinkError as exc:
        log.error("cannot queue the fetches of a push to %s: %s", full_name, exc.one_line())
        return []
    ids = [run.id for run in runs]
    if ids:
        log.info("push to %s: fetch runs %s queued", full_name, ", ".join(str(run) for run in ids))
    if ids and not requests.workers_elsewhere:
        spawn_detached(
            settings,
            ["host", "run-fetches", *(str(run) for run in ids)],
            what="fetch runner",
            runner=runner,
        )
    return ids
