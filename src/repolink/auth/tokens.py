"""API tokens: shown once when made, kept as a SHA-256 only; and who a presented token is.

A token is a recognisable prefix followed by 43 url-safe characters (32 random bytes), so a
leaked one is found by secret scanners: ``rlp_`` for a user's token, ``rlh_`` for an owner-less
site-admin token of the host API (``repolink host token create``, and every token made before
users existed). Only the SHA-256 is stored, which is enough for a random 256-bit token: there is
nothing to brute-force, so a slow password hash would buy nothing. Besides stored tokens, the
``admin_token`` of the settings is accepted, as a site admin.

These are the session-level functions; :class:`repolink.accounts.tokens.TokenService` is what
adapters call.
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

from repolink.auth.principal import ADMIN_TOKEN_USERNAME, Principal
from repolink.errors import NotFound, ValidationError
from repolink.settings import Settings
from repolink.store.models.accounts import ApiToken, User
from repolink.store.types import utcnow

log = logging.getLogger(__name__)

USER_TOKEN_PREFIX = "rlp_"  # noqa: S105 (a marker that makes leaked tokens recognisable)
TOKEN_PREFIX = "rlh_"  # noqa: S105 (the host admin tokens' marker, still made and accepted)
TOKEN_BYTES = 32
# What a list shows of a token: its marker and four characters, enough to tell tokens apart.
SHOWN_PREFIX_LENGTH = 8
MAX_LABEL_LENGTH = 200
DEFAULT_LABEL = "admin token"
# Longer than any token we make; anything longer is refused before it is hashed.
MAX_PRESENTED_LENGTH = 512
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token after it was made: never the token itself.
    ``user_id`` ``None``: a site-admin token that belongs to no user."""

    id: int
    name: str
    prefix: str
    user_id: int | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def label(self) -> str:
        """The host admin tokens' word for the name."""
        return self.name

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    label: str = DEFAULT_LABEL,
    *,
    user_id: int | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[TokenInfo, str]:
    """A new token: its record, and the token itself, which is never available again.
    With no ``user_id``, an owner-less site-admin token (``rlh_``)."""
    marker = TOKEN_PREFIX if user_id is None else USER_TOKEN_PREFIX
    token = marker + secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiToken(
        user_id=user_id,
        name=checked_label(label),
        prefix=token[:SHOWN_PREFIX_LENGTH],
        token_hash=hash_token(token),
        created_at=now or utcnow(),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    log.info("created API token %d (%s)", row.id, row.name)
    return token_info(row), token


def authenticate(
    session: Session, settings: Settings, presented: str | None, *, now: datetime | None = None
) -> Principal | None:
    """The principal ``presented`` stands for: the settings' admin token, or an active,
    unexpired stored token whose owner (if any) is not deleted. ``None`` otherwise — one
    answer for every failure, so a caller cannot tell a wrong token from an expired one."""
    if not presented or len(presented) > MAX_PRESENTED_LENGTH or not presented.isascii():
        return None
    presented_hash = hash_token(presented)
    if settings.admin_token is not None:
        configured = settings.admin_token.get_secret_value()
        # Comparing digests keeps the comparison constant-time whatever the two lengths are.
        if configured and hmac.compare_digest(hash_token(configured), presented_hash):
            return Principal(user_id=None, username=ADMIN_TOKEN_USERNAME, site_admin=True)
    # The lookup by hash cannot leak the token: timing could at most hint at a prefix of
    # its SHA-256, from which no token can be made.
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == presented_hash, ApiToken.revoked_at.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, presented_hash):
        return None
    now = now or utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.user_id is None:
        principal = Principal(user_id=None, username=f"token-{row.id}", site_admin=True)
    else:
        user = session.get(User, row.user_id)
        if user is None or user.deleted_at is not None:
            return None
        principal = Principal(user_id=user.id, username=user.username, site_admin=user.site_admin)
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return principal


def verify_token(session: Session, settings: Settings, presented: str | None) -> bool:
    """Whether ``presented`` is a site admin's token (the host API's old question)."""
    principal = authenticate(session, settings, presented)
    return principal is not None and principal.site_admin


def list_tokens(
    session: Session,
    *,
    include_revoked: bool = False,
    user_id: int | None = None,
    owner_less: bool = False,
) -> list[TokenInfo]:
    """Tokens by id: those of ``user_id``, or with ``owner_less`` the site-admin tokens that
    belong to no user, else all."""
    query = select(ApiToken).order_by(ApiToken.id)
    if owner_less:
        query = query.where(ApiToken.user_id.is_(None))
    elif user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return [token_info(row) for row in session.scalars(query)]


def revoke_token(session: Session, token_id: int, *, now: datetime | None = None) -> TokenInfo:
    """Revoke a token at once; the record stays, for the audit trail."""
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        raise NotFound(
            "token_not_found",
            f"there is no active token with id {token_id}",
            "check the id against the list of tokens",
        )
    row.revoked_at = now or utcnow()
    log.info("revoked API token %d (%s)", row.id, row.name)
    return token_info(row)


def checked_label(label: str) -> str:
    text = label.strip()
    if not text or len(text) > MAX_LABEL_LENGTH or not text.isprintable():
        raise ValidationError(
            "token_label_invalid",
            "a token name is 1–200 printable characters",
            "name the token after who or what uses it, e.g. 'platform CI'",
        )
    return text


def token_info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        user_id=row.user_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
