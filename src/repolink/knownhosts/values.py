"""What the known-hosts store hands out: trusted keys, scanned keys, trust outcomes."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from repolink.errors import KeyFormatError
from repolink.keys.public import PublicKey
from repolink.knownhosts.hostport import display_name, known_hosts_name

log = logging.getLogger(__name__)

Source = Literal["shipped", "stored"]


def host_key_from_line(line: str) -> PublicKey:
    """The key of a ``type base64`` line (as known_hosts and ssh-keyscan write it, without the
    host); :class:`KeyFormatError` when it is not a sound key of that type."""
    fields = line.split()
    if len(fields) < 2:
        raise KeyFormatError(
            "host_key_line_invalid",
            "a host key line must be 'type base64'",
            "copy the line as ssh-keyscan prints it, without the host name",
        )
    key_type, body = fields[0], fields[1]
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(
            "host_key_line_invalid",
            "the key part of the host key line is not base64",
            "copy the line as ssh-keyscan prints it, without the host name",
        ) from None
    key = PublicKey.from_blob(blob)
    if key.key_type != key_type:
        raise KeyFormatError(
            "host_key_line_invalid",
            f"the line says {key_type} but holds a {key.key_type} key",
            "copy the line as ssh-keyscan prints it, without the host name",
        )
    return key


def stored_host_key(line: str) -> PublicKey:
    """The key of a ``type base64`` line that repolink wrote itself — a trusted key's stored
    line, a shipped pin — which :func:`host_key_from_line` checked when it came in (pins: the
    tests). Read without checking it again, so a fetch that only reads trusted keys does not
    load the cryptography library that checks a blob (issue 10 §2)."""
    key_type, body = line.split()[:2]
    return PublicKey(key_type, base64.b64decode(body))


@dataclass(frozen=True)
class TrustedHostKey:
    """A host key repolink trusts for ``host:port``.

    ``source`` is ``shipped`` for the pins that come with repolink (``reference`` names the
    documentation page they were taken from) and ``stored`` for keys trusted with
    :func:`repolink.knownhosts.trust`. A stored key with ``overrides_pin`` was trusted with
    ``force`` for a host that has shipped pins; while one exists, those pins are not trusted
    and :func:`repolink.knownhosts.list_known_hosts` shows them ``overridden``.
    """

    host: str
    port: int
    key: PublicKey
    source: Source
    reference: str | None = None
    trusted_at: datetime | None = None
    overrides_pin: bool = False
    overridden: bool = False
    id: int | None = None
    """The stored key's id (what removes it by id); ``None`` for a shipped pin."""

    @property
    def fingerprint(self) -> str:
        return self.key.sha256_fingerprint

    @property
    def key_type(self) -> str:
        return self.key.key_type

    @property
    def public_line(self) -> str:
        """``type base64``."""
        return self.key.openssh_line(with_comment=False)

    @property
    def name(self) -> str:
        """``HOST[:PORT]`` as the CLI takes it."""
        return display_name(self.host, self.port)

    @property
    def shipped(self) -> bool:
        return self.source == "shipped"

    def known_hosts_line(self) -> str:
        return f"{known_hosts_name(self.host, self.port)} {self.public_line}"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "host": self.host,
            "port": self.port,
            "name": self.name,
            "key_type": self.key_type,
            "fingerprint": self.fingerprint,
            "public_key": self.public_line,
            "source": self.source,
            "shipped": self.shipped,
            "reference": self.reference,
            "trusted_at": self.trusted_at.isoformat() if self.trusted_at else None,
            "overrides_pin": self.overrides_pin,
            "overridden": self.overridden,
        }


@dataclass(frozen=True)
class ScannedHostKey:
    """A host key a server presented to a scan. Nothing about it is trusted."""

    host: str
    port: int
    key: PublicKey

    @property
    def fingerprint(self) -> str:
        return self.key.sha256_fingerprint

    @property
    def key_type(self) -> str:
        return self.key.key_type

    @property
    def public_line(self) -> str:
        """``type base64``."""
        return self.key.openssh_line(with_comment=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "key_type": self.key_type,
            "fingerprint": self.fingerprint,
            "public_key": self.public_line,
        }


# What asks a server for its host keys (``host``, ``port``): the real one is built by
# :func:`repolink.git.keyscan.scanner_for`; the trust store only needs something of this shape.
Scanner = Callable[[str, int], list[ScannedHostKey]]


@dataclass(frozen=True)
class TrustOutcome:
    """What :func:`repolink.knownhosts.trust` did: ``created`` is False when the key was
    trusted already (nothing was scanned or stored then)."""

    key: TrustedHostKey
    created: bool
