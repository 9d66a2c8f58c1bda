"""Which host keys are trusted for a ``host:port`` now: its shipped pins (unless a stored key
overrides them) and the keys trusted explicitly — computed once, here, from the stored rows
whichever way they were read: the ORM's (:func:`repolink.knownhosts.service.trusted_keys`) or
one fixed SQL text on a plain connection (:func:`trusted_keys_plain`, for a refresh that
imports no ORM, issue 10 §2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from repolink.knownhosts.hostport import check_port, normalize_host
from repolink.knownhosts.pins import ShippedPin, pins_for
from repolink.knownhosts.values import TrustedHostKey, stored_host_key
from repolink.store.plain import PlainReader, utc_datetime


class StoredHostKey(Protocol):
    """A ``known_hosts`` row, as the ORM or a plain read gives it."""

    @property
    def id(self) -> int: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def public_key(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def overrides_pin(self) -> bool: ...


@dataclass(frozen=True)
class _Row:
    id: int
    host: str
    port: int
    public_key: str
    created_at: datetime
    overrides_pin: bool


# In the order the ORM's look-up reads them (repolink.knownhosts.service._rows).
_STORED = (
    "SELECT id, host, port, public_key, created_at, overrides_pin FROM known_hosts"
    " WHERE host = :host AND port = :port ORDER BY created_at, id"
)


def trusted_from(rows: Sequence[StoredHostKey], host: str, port: int) -> list[TrustedHostKey]:
    """Every key trusted for ``host:port`` (normalised) given its stored ``rows``, in order:
    its pins (none while a stored key overrides them), then the stored keys."""
    keys = [from_row(row) for row in rows]
    if any(row.overrides_pin for row in rows):
        return keys
    stored = {key.fingerprint for key in keys}
    pinned = [from_pin(pin) for pin in pins_for(host, port)]
    return [pin for pin in pinned if pin.fingerprint not in stored] + keys


def trusted_keys_plain(db: PlainReader, host: str, port: int = 22) -> list[TrustedHostKey]:
    """:func:`trusted_from` with the rows read by one fixed SQL text."""
    host, port = normalize_host(host), check_port(port)
    rows = [
        _Row(
            id=int(row["id"]),
            host=row["host"],
            port=int(row["port"]),
            public_key=row["public_key"],
            created_at=utc_datetime(row["created_at"]),
            overrides_pin=bool(row["overrides_pin"]),
        )
        for row in db.rows(_STORED, {"host": host, "port": port})
    ]
    return trusted_from(rows, host, port)


def from_row(row: StoredHostKey) -> TrustedHostKey:
    return TrustedHostKey(
        host=row.host,
        port=row.port,
        key=stored_host_key(row.public_key),
        source="stored",
        trusted_at=row.created_at,
        overrides_pin=row.overrides_pin,
        id=row.id,
    )


def from_pin(pin: ShippedPin, *, overridden: bool = False) -> TrustedHostKey:
    return TrustedHostKey(
        host=pin.host,
        port=pin.port,
        key=stored_host_key(pin.key_line),
        source="shipped",
        reference=pin.source_url,
        overridden=overridden,
    )


def known_hosts_lines(trusted: Iterable[TrustedHostKey]) -> str:
    """The known_hosts text of exactly these keys (:func:`trusted_from` of the hosts a run
    contacts): a line each, a repeated line once."""
    lines = dict.fromkeys(key.known_hosts_line() for key in trusted)
    return "".join(f"{line}\n" for line in lines)
