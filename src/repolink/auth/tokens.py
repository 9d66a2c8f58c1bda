"""Admin tokens of the host API: shown once when made, kept as a SHA-256 only.

A token is ``rlh_`` followed by 43 url-safe characters (32 random bytes), so it is recognisable
in a leaked paste and by secret scanners. Only its SHA-256 is stored, which is enough for a
random 256-bit token: there is nothing to brute-force, so a slow password hash would buy
nothing. Besides stored tokens, the ``admin_token`` of the settings is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from repolink.errors import NotFound, ValidationError
from repolink.settings import Settings
from repolink.store.models.hooks import HostToken
from repolink.store.types import utcnow

log = logging.getLogger(__name__)

TOKEN_PREFIX = "rlh_"  # noqa: S105 (a marker that makes leaked tokens recognisable)
TOKEN_BYTES = 32
MAX_LABEL_LENGTH = 200
DEFAULT_LABEL = "admin token"
# Longer than any token we make; anything longer is refused before it is hashed.
MAX_PRESENTED_LENGTH = 512
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token after it was made: never the token itself."""

    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, label: str = DEFAULT_LABEL) -> tuple[TokenInfo, str]:
    """A new admin token: its record, and the token itself, which is never available again."""
    row = HostToken(label=_checked_label(label))
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row.token_hash = hash_token(token)
    session.add(row)
    session.flush()
    log.info("created host admin token %d (%s)", row.id, row.label)
    return _info(row), token


def verify_token(session: Session, settings: Settings, presented: str | None) -> bool:
    """Whether ``presented`` is the settings' admin token or an active stored token."""
    if not presented or len(presented) > MAX_PRESENTED_LENGTH or not presented.isascii():
        return False
    presented_hash = hash_token(presented)
    if settings.admin_token is not None:
        configured = settings.admin_token.get_secret_value()
        # Comparing digests keeps the comparison constant-time whatever the two lengths are.
        if configured and hmac.compare_digest(hash_token(configured), presented_hash):
            return True
    # The lookup by hash cannot leak the token: timing could at most hint at a prefix of
    # its SHA-256, from which no token can be made.
    row = session.scalars(
        select(HostToken).where(
            HostToken.token_hash == presented_hash, HostToken.revoked_at.is_(None)
        )
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, presented_hash):
        return False
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return True


def list_tokens(session: Session, *, include_revoked: bool = False) -> list[TokenInfo]:
    query = select(HostToken).order_by(HostToken.id)
    if not include_revoked:
        query = query.where(HostToken.revoked_at.is_(None))
    return [_info(row) for row in session.scalars(query)]


def revoke_token(session: Session, token_id: int) -> TokenInfo:
    """Revoke a token at once; the record stays, for the audit trail."""
    row = session.get(HostToken, token_id)
    if row is None or row.revoked_at is not None:
        raise NotFound(
            "token_not_found",
            f"there is no active admin token with id {token_id}",
            "check the id against the list of admin tokens",
        )
    row.revoked_at = utcnow()
    log.info("revoked host admin token %d (%s)", row.id, row.label)
    return _info(row)


def _checked_label(label: str) -> str:
    text = label.strip()
    if not text or len(text) > MAX_LABEL_LENGTH or not text.isprintable():
        raise ValidationError(
            "token_label_invalid",
            "a token label is 1–200 printable characters",
            "name the token after who or what uses it, e.g. 'platform CI'",
        )
    return text


def _info(row: HostToken) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        label=row.label,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
