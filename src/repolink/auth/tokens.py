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
from typing import TypeGuard

from sqlalchemy import Connection, String, bindparam, select, text, update
from sqlalchemy.orm import Session

from repolink.auth.principal import ADMIN_TOKEN_USERNAME, Principal
from repolink.errors import NotFound, ValidationError
from repolink.settings import Settings
from repolink.store.models.accounts import ApiToken
from repolink.store.types import UTCDateTime, utcnow

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


@dataclass(frozen=True)
class Presented:
    """Who a presented token is, and whether its last use is due to be written."""

    principal: Principal
    token_id: int | None
    """The stored token's id; ``None`` for the settings' admin token, which has no row."""
    expires_at: datetime | None
    last_use_due: bool


# The token and its owner in one statement, on a plain connection: the ORM's unit of work
# cost several times the lookup on the path every API request takes.
_TOKEN_AND_OWNER = (
    text(
        "SELECT t.id, t.user_id, t.token_hash, t.expires_at, t.last_used_at,"
        " u.username, u.site_admin, u.deleted_at"
        " FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = :token_hash AND t.revoked_at IS NULL"
    )
    .bindparams(bindparam("token_hash", type_=String()))
    .columns(expires_at=UTCDateTime(), last_used_at=UTCDateTime(), deleted_at=UTCDateTime())
)


def admin_token_principal(settings: Settings, presented: str | None) -> Principal | None:
    """The site admin when ``presented`` is the settings' admin token, else ``None`` (no
    database involved)."""
    if not _presentable(presented) or settings.admin_token is None:
        return None
    configured = settings.admin_token.get_secret_value()
    # Comparing digests keeps the comparison constant-time whatever the two lengths are.
    if configured and hmac.compare_digest(hash_token(configured), hash_token(presented)):
        return Principal(user_id=None, username=ADMIN_TOKEN_USERNAME, site_admin=True)
    return None


def look_up(
    connection: Connection, settings: Settings, presented: str | None, *, now: datetime
) -> Presented | None:
    """Who ``presented`` stands for: the settings' admin token, or an active, unexpired stored
    token whose owner (if any) is not deleted. ``None`` otherwise — one answer for every
    failure, so a caller cannot tell a wrong token from an expired one. Reads only: the
    caller writes the last use (:func:`mark_used`) when it is due."""
    admin = admin_token_principal(settings, presented)
    if admin is not None:
        return Presented(admin, None, None, last_use_due=False)
    presented_hash = presented_token_hash(presented)
    if presented_hash is None:
        return None
    # The lookup by hash cannot leak the token: timing could at most hint at a prefix of
    # its SHA-256, from which no token can be made.
    row = connection.execute(_TOKEN_AND_OWNER, {"token_hash": presented_hash}).first()
    if row is None or not hmac.compare_digest(row.token_hash, presented_hash):
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.user_id is None:
        principal = Principal(user_id=None, username=f"token-{row.id}", site_admin=True)
    elif row.username is None or row.deleted_at is not None:
        return None
    else:
        principal = Principal(
            user_id=row.user_id, username=row.username, site_admin=bool(row.site_admin)
        )
    due = row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION
    return Presented(principal, row.id, row.expires_at, last_use_due=due)


def mark_used(connection: Connection, token_id: int, now: datetime) -> None:
    """Write the token's last use (:func:`look_up` says when it is due)."""
    connection.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def authenticate(
    session: Session, settings: Settings, presented: str | None, *, now: datetime | None = None
) -> Principal | None:
    """:func:`look_up` and the last use written, in the caller's transaction."""
    now = now or utcnow()
    found = look_up(session.connection(), settings, presented, now=now)
    if found is None:
        return None
    if found.last_use_due and found.token_id is not None:
        mark_used(session.connection(), found.token_id, now)
    return found.principal


def presented_token_hash(presented: str | None) -> str | None:
    """The SHA-256 a stored token would have, ``None`` for what cannot be a token."""
    return hash_token(presented) if _presentable(presented) else None


def _presentable(presented: str | None) -> TypeGuard[str]:
    """Whether ``presented`` could be a token at all: refused before it is hashed if not."""
    if presented is None:
        return False
    return 0 < len(presented) <= MAX_PRESENTED_LENGTH and presented.isascii()


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
