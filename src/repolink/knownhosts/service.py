"""The known-hosts store: shipped pins plus keys trusted explicitly, and known_hosts rendering.

Functions take the caller's session and never commit; the caller's transaction decides. Trust
comes in two steps so that a caller can scan between two transactions instead of inside one:
:func:`check_trust` (is it trusted already? may it be trusted?) and :func:`store_trust` (check
again, then store the presented key); :func:`trust` is both around a scan, in one session.

Rules:

- A key is trusted for one ``host:port`` only.
- ``trust`` stores exactly one key: the one the server presents *and* whose SHA256 fingerprint
  the caller gave (checked out of band). If the server presents no such key, nothing is stored.
- Hosts with shipped pins refuse other keys unless ``force`` is given. A forced key is an
  override: while one exists for ``host:port``, that host's pins are not trusted (a rotated-away
  key should stop working), and removing the overrides brings the pins back.
- Shipped pins cannot be removed; stored keys can.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repolink.errors import Conflict, GitError, NotFound
from repolink.knownhosts.fingerprint import parse_sha256_fingerprint
from repolink.knownhosts.hostport import check_port, display_name, normalize_host
from repolink.knownhosts.pins import SHIPPED_PINS, pins_for
from repolink.knownhosts.trusted import from_pin, from_row, known_hosts_lines, trusted_from
from repolink.knownhosts.values import (
    ScannedHostKey,
    Scanner,
    TrustedHostKey,
    TrustOutcome,
)
from repolink.store.models.known_hosts import KnownHost
from repolink.store.types import utcnow
from repolink.urls import SSHURL

log = logging.getLogger(__name__)

Target = SSHURL | tuple[str, int]


def trusted_keys(session: Session, host: str, port: int = 22) -> list[TrustedHostKey]:
    """Every key trusted for ``host:port`` now: its pins (unless overridden), then stored keys."""
    host, port = normalize_host(host), check_port(port)
    return trusted_from(_rows(session, host, port), host, port)


def known_hosts_text(session: Session, targets: Iterable[Target]) -> str:
    """A known_hosts file for exactly the hosts a run contacts (URLs or ``(host, port)``).

    A host with no trusted key gets no line: ssh then fails with "Host key verification
    failed", which :func:`repolink.knownhosts.diagnose_ssh_stderr` turns into
    ``host_key_unknown`` with the presented fingerprint.
    """
    keys: list[TrustedHostKey] = []
    seen: set[tuple[str, int]] = set()
    for target in targets:
        host, port = target.host_port if isinstance(target, SSHURL) else target
        key = (normalize_host(host), check_port(port))
        if key in seen:
            continue
        seen.add(key)
        keys += trusted_keys(session, *key)
    return known_hosts_lines(keys)


@dataclass(frozen=True)
class TrustCheck:
    """What :func:`check_trust` found: ``trusted``, the key when it is trusted already; else
    whether storing it would override the host's shipped pins."""

    host: str
    port: int
    fingerprint: str
    trusted: TrustedHostKey | None
    overrides_pin: bool

    @property
    def name(self) -> str:
        return display_name(self.host, self.port)


def check_trust(
    session: Session, host: str, port: int, fingerprint: str, *, force: bool = False
) -> TrustCheck:
    """Whether the key with SHA256 ``fingerprint`` is trusted for ``host:port`` already, and if
    not, whether it may be: ``host_key_pin_conflict`` for another key of a pinned host without
    ``force``. Contacts nothing."""
    host, port = normalize_host(host), check_port(port)
    wanted = parse_sha256_fingerprint(fingerprint)
    for key in trusted_keys(session, host, port):
        if key.fingerprint == wanted:
            return TrustCheck(host, port, wanted, key, overrides_pin=key.overrides_pin)
    pins = pins_for(host, port)
    pinned = {pin.documented_fingerprint for pin in pins}
    overrides = bool(pins) and wanted not in pinned
    if overrides and not force and not _is_overridden(session, host, port):
        raise Conflict(
            "host_key_pin_conflict",
            f"{display_name(host, port)} has shipped host keys ({', '.join(sorted(pinned))}) "
            f"and {wanted} is not one of them",
            f"check the fingerprints {host} publishes; if it really replaced its key, trust it "
            "again forcing the override (the shipped keys of this host then stop being trusted)",
            context={"host": host, "name": display_name(host, port)},
        )
    return TrustCheck(host, port, wanted, None, overrides_pin=overrides)


def store_trust(
    session: Session, check: TrustCheck, presented: list[ScannedHostKey], *, force: bool = False
) -> TrustOutcome:
    """Store the one key of ``presented`` (what the server showed a scan) whose fingerprint
    ``check`` names, after checking again in this session what :func:`check_trust` checked.

    Raises ``host_key_fingerprint_mismatch`` (naming what the server presented) when no
    presented key has that fingerprint.
    """
    again = check_trust(session, check.host, check.port, check.fingerprint, force=force)
    if again.trusted is not None:
        return TrustOutcome(again.trusted, created=False)
    match = next((key for key in presented if key.fingerprint == again.fingerprint), None)
    if match is None:
        raise _mismatch(again.name, again.fingerprint, presented)
    row = KnownHost(
        host=again.host,
        port=again.port,
        key_type=match.key_type,
        public_key=match.public_line,
        fingerprint_sha256=match.fingerprint,
        overrides_pin=again.overrides_pin,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Someone trusted the same key meanwhile: theirs stands.
        existing = _find(session, again.host, again.port, again.fingerprint)
        if existing is None:
            raise
        return TrustOutcome(from_row(existing), created=False)
    log.info("trusted %s host key %s for %s", match.key_type, match.fingerprint, again.name)
    return TrustOutcome(from_row(row), created=True)


def trust(
    session: Session,
    host: str,
    port: int,
    fingerprint: str,
    *,
    scanner: Scanner,
    force: bool = False,
) -> TrustOutcome:
    """Contact ``host:port`` and store the one presented key whose SHA256 is ``fingerprint``,
    all in the caller's session (a service scans between two transactions instead).

    Raises ``host_key_fingerprint_mismatch`` (naming what the server presented) when it
    presents no such key, ``host_key_pin_conflict`` for another key of a pinned host without
    ``force``, and the scanner's network errors (``dns_failed``, ``connection_refused`` …).
    """
    check = check_trust(session, host, port, fingerprint, force=force)
    if check.trusted is not None:
        return TrustOutcome(check.trusted, created=False)
    return store_trust(session, check, scanner(check.host, check.port), force=force)


def list_known_hosts(session: Session) -> list[TrustedHostKey]:
    """Every shipped pin (``overridden`` when a forced key replaces it) and every stored key,
    ordered by host and port, pins first."""
    rows = list(session.scalars(select(KnownHost)))
    overridden = {(row.host, row.port) for row in rows if row.overrides_pin}
    stored = {(row.host, row.port, row.fingerprint_sha256) for row in rows}
    entries = [
        from_pin(pin, overridden=(pin.host, pin.port) in overridden)
        for pin in SHIPPED_PINS
        if (pin.host, pin.port, pin.documented_fingerprint) not in stored
    ]
    entries += [from_row(row) for row in rows]
    return sorted(entries, key=lambda key: (key.host, key.port, not key.shipped, key.key_type))


def remove(
    session: Session, host: str, port: int = 22, fingerprint: str | None = None
) -> list[TrustedHostKey]:
    """Remove the stored key with ``fingerprint`` of ``host:port``, or all its stored keys.

    Shipped pins cannot be removed (``host_key_shipped``); ``host_key_not_found`` when there
    is nothing to remove.
    """
    host, port = normalize_host(host), check_port(port)
    name = display_name(host, port)
    wanted = parse_sha256_fingerprint(fingerprint) if fingerprint is not None else None
    rows = [row for row in _rows(session, host, port) if wanted in (None, row.fingerprint_sha256)]
    if not rows:
        pinned = [
            pin for pin in pins_for(host, port) if wanted in (None, pin.documented_fingerprint)
        ]
        if pinned:
            raise Conflict(
                "host_key_shipped",
                f"{name} has host keys shipped with repolink; they cannot be removed",
                "to replace them, trust the new key by its fingerprint, forcing the override",
                context={"host": host, "name": name},
            )
        what = f"{wanted} for {name}" if wanted else f"for {name}"
        raise NotFound(
            "host_key_not_found",
            f"no stored host key {what}",
            "list the trusted host keys to see which are stored",
            context={"host": host, "name": name},
        )
    removed = [from_row(row) for row in rows]
    session.execute(delete(KnownHost).where(KnownHost.id.in_([row.id for row in rows])))
    session.flush()
    for key in removed:
        log.info("removed %s host key %s of %s", key.key_type, key.fingerprint, name)
    return removed


def remove_by_id(session: Session, key_id: int) -> TrustedHostKey:
    """Remove the stored key with this id; ``host_key_not_found`` when there is none (a
    shipped pin has no id: it cannot be removed)."""
    row = session.get(KnownHost, key_id)
    if row is None:
        raise NotFound(
            "host_key_not_found",
            f"no stored host key has the id {key_id}",
            "list the trusted host keys to see the ids of the stored ones",
        )
    removed = from_row(row)
    session.execute(delete(KnownHost).where(KnownHost.id == row.id))
    session.flush()
    log.info("removed %s host key %s of %s", removed.key_type, removed.fingerprint, removed.name)
    return removed


def _rows(session: Session, host: str, port: int) -> list[KnownHost]:
    query = (
        select(KnownHost)
        .where(KnownHost.host == host, KnownHost.port == port)
        .order_by(KnownHost.created_at, KnownHost.id)
    )
    return list(session.scalars(query))


def _find(session: Session, host: str, port: int, fingerprint: str) -> KnownHost | None:
    query = select(KnownHost).where(
        KnownHost.host == host,
        KnownHost.port == port,
        KnownHost.fingerprint_sha256 == fingerprint,
    )
    return session.scalars(query).first()


def _is_overridden(session: Session, host: str, port: int) -> bool:
    return any(row.overrides_pin for row in _rows(session, host, port))


def _mismatch(name: str, wanted: str, presented: list[ScannedHostKey]) -> GitError:
    # The server was asked and showed other keys: the operation failed (exit 1), like the scan's
    # own failures, whether the fingerprint given or the server is at fault.
    shown = ", ".join(f"{key.key_type} {key.fingerprint}" for key in presented) or "no key"
    return GitError(
        "host_key_fingerprint_mismatch",
        f"{name} presents {shown}, none with the fingerprint {wanted}; nothing was trusted",
        "check the fingerprint with the server's admin or the service's documentation; if "
        "what the server presents differs from what they publish, do not connect",
    )
