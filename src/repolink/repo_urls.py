"""Which repository a URL names, whatever its form: the identity webhook payloads are matched by.

A forge's payload names its repository in several spellings — ``git@github.com:team/app.git``,
``ssh://git@github.com/team/app``, ``https://github.com/team/app.git``, or only ``team/app`` —
and a project's connection holds one more. :func:`repository_address` reduces each to a
:class:`RepositoryAddress` (host, path, and the SSH port when there is one), and
:meth:`RepositoryAddress.matches` says whether two name the same repository.

Nothing here reaches git: an address is for comparing only. The SSH forms are read by
:func:`repolink.urls.parse_ssh_url`, so they are understood exactly as a connection's URL is.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from repolink.errors import URLError
from repolink.urls import parse_ssh_url

log = logging.getLogger(__name__)

__all__ = ["RepositoryAddress", "path_address", "repository_address"]

_WEB_SCHEMES = frozenset({"http", "https", "git"})
# Longer than any URL a connection may hold (urls.MAX_URL_LENGTH): nothing to compare against.
_MAX_TEXT = 4096


@dataclass(frozen=True)
class RepositoryAddress:
    """A repository as a comparable value.

    - ``host``: lower-case; ``None`` for a bare path (a payload's ``team/app``), which matches
      that path on any host;
    - ``ssh_port``: the port of an SSH URL (``None``: the default), ``None`` for web URLs;
    - ``path``: the segments, lower-case, without empty or ``.`` segments and ``.git`` —
      forges treat repository paths case-insensitively;
    - ``ssh``: whether this came from an SSH URL (only then is its port compared).
    """

    host: str | None
    ssh_port: int | None
    path: str
    ssh: bool

    def matches(self, other: RepositoryAddress) -> bool:
        """Whether both name the same repository: same path, same host when both name one,
        and the same port when both are SSH URLs (a web URL's port says nothing of SSH's)."""
        if self.path != other.path:
            return False
        if self.host is None or other.host is None:
            return True
        if self.host != other.host:
            return False
        return self.ssh_port == other.ssh_port if self.ssh and other.ssh else True


def repository_address(text: str) -> RepositoryAddress | None:
    """The repository ``text`` names — an SSH, scp-like, ``https://``, ``http://`` or
    ``git://`` URL — or ``None`` when it names none we can read."""
    stripped = text.strip()
    if not stripped or len(stripped) > _MAX_TEXT:
        return None
    scheme, separator, _ = stripped.partition("://")
    if separator and scheme.lower() in _WEB_SCHEMES:
        return _web_address(stripped)
    try:
        url = parse_ssh_url(stripped)
    except URLError:
        return None
    path = _normal_path(url.path)
    if path is None:
        return None
    return RepositoryAddress(host=url.host, ssh_port=url.port, path=path, ssh=True)


def path_address(path: str) -> RepositoryAddress | None:
    """A repository named by its path alone (``team/app``), on whichever host."""
    normal = _normal_path(path)
    return None if normal is None else RepositoryAddress(None, None, normal, ssh=False)


def _web_address(text: str) -> RepositoryAddress | None:
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        host = ipaddress.ip_address(host).compressed
    except ValueError:
        host = host.lower().rstrip(".")
    path = _normal_path(unquote(parts.path))
    if path is None:
        return None
    return RepositoryAddress(host=host, ssh_port=None, path=path, ssh=False)


def _normal_path(path: str) -> str | None:
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    if segments and segments[-1].lower().endswith(".git"):
        stem = segments[-1][: -len(".git")]
        if stem:
            segments[-1] = stem
        else:
            segments.pop()
    if not segments or any(segment == ".." or not segment.isprintable() for segment in segments):
        return None
    return "/".join(segments).lower()
