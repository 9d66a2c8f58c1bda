"""Sign-ins to the web pages: a server-side session per sign-in, resolved to a principal.

docs/architecture.md, "Sessions": the browser's cookie holds a random 256-bit secret, the
``sessions`` table only its SHA-256 (as for API tokens, a slow hash would buy nothing against a
random secret). A session resolves to the very :class:`~repolink.auth.principal.Principal` a
token of the same user does, read afresh from the user's row on every request, so a site-admin
flag taken away applies at once. A session ends when it has not been seen for
:data:`IDLE_TIMEOUT` or is :data:`ABSOLUTE_LIFETIME` old, at sign-out, at "sign out everywhere",
when the user's password changes and when the user is deleted (those two in
:class:`~repolink.accounts.users.UserService`'s transactions). Every sign-in makes a new
session (no fixation).

Sign-in answers one refusal, ``signin_failed``, for an unknown user, a user without a password
and a wrong password. Failures are counted per account and per source address (the client's,
as the adapter tells it) in the database, so every server process counts the same ones
(:class:`~repolink.accounts.throttle.Throttle`); past either limit an attempt is refused with
``signin_throttled`` before any password is checked. Each session carries its own CSRF secret,
which the pages render into their forms and compare on every unsafe request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import delete, or_, select

from repolink.accounts.audit import write_entry
from repolink.accounts.throttle import Throttle
from repolink.accounts.users import UserService
from repolink.auth.principal import Principal
from repolink.errors import RateLimited, Unauthorized
from repolink.logsafe import escaped
from repolink.store import Store
from repolink.store.models.accounts import User, WebSession, delete_sessions
from repolink.store.types import Clock, utcnow

log = logging.getLogger(__name__)

IDLE_TIMEOUT = timedelta(hours=12)
ABSOLUTE_LIFETIME = timedelta(days=14)
SECRET_BYTES = 32
# Longer than any secret we make; anything longer is refused before it is hashed.
MAX_SECRET_LENGTH = 128
# last_seen_at is written at most this often per session, not on every page.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# Failed sign-ins allowed per account and per source address within THROTTLE_WINDOW.
ACCOUNT_FAILURE_LIMIT = 10
SOURCE_FAILURE_LIMIT = 50
THROTTLE_WINDOW = timedelta(minutes=15)
# What an account is counted by: the name as typed, bounded (an unknown name counts too).
_MAX_ACCOUNT_KEY = 100


@dataclass(frozen=True)
class SignedIn:
    """A live session: who it is, and its CSRF secret. Never the session's own secret."""

    session_id: int
    principal: Principal
    csrf_secret: str
    created_at: datetime
    expires_at: datetime

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's CSRF token (constant-time)."""
        return csrf_equal(self.csrf_secret, presented)


@dataclass(frozen=True)
class NewSession:
    """A session just made: ``secret`` goes into the cookie and is never available again."""

    signed_in: SignedIn
    secret: str

    def __repr__(self) -> str:
        return f"NewSession(session_id={self.signed_in.session_id!r})"


def csrf_equal(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of a CSRF token, whatever the two lengths are."""
    if not presented or not presented.isascii():
        return False
    return hmac.compare_digest(_digest(expected), _digest(presented))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class SessionService:
    def __init__(
        self,
        store: Store,
        users: UserService,
        *,
        clock: Clock = utcnow,
        account_failure_limit: int = ACCOUNT_FAILURE_LIMIT,
        source_failure_limit: int = SOURCE_FAILURE_LIMIT,
        throttle_window: timedelta = THROTTLE_WINDOW,
    ) -> None:
        self._store = store
        self._users = users
        self._clock = clock
        self._by_account = Throttle(
            store, "account", account_failure_limit, throttle_window, clock=clock
        )
        self._by_source = Throttle(
            store, "source", source_failure_limit, throttle_window, clock=clock
        )

    # -- signing in and out ----------------------------------------------------------------

    def sign_in(self, username: str, password: str, *, source: str) -> NewSession:
        """A new session for ``username`` if ``password`` is theirs; else ``signin_failed``
        (one answer for every reason), or ``signin_throttled`` past a failure limit.
        ``source`` is the client's address, counted like the account."""
        account = _account_key(username)
        self._check_throttles(account, source)
        principal = self._users.check_password(username.strip(), password)
        if principal is None or principal.user_id is None:
            self._by_account.failed(account)
            self._by_source.failed(source)
            log.info("refused a sign-in from %s", escaped(source))
            raise Unauthorized(
                "signin_failed",
                "the username or the password is wrong",
                "check both and sign in again; an administrator can set a new password",
            )
        self._by_account.clear(account)
        opened = self._open(principal)
        log.info(
            "user %s signed in from %s (session %d)",
            principal.username,
            escaped(source),
            opened.signed_in.session_id,
        )
        return opened

    def resolve(self, secret: str | None) -> SignedIn | None:
        """The live session whose cookie holds ``secret``, or ``None`` (missing, unknown,
        idle too long, too old, its user gone: one answer). An ended session's row goes."""
        if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
            return None
        now = self._clock()
        with self._store.session() as session:
            found = session.execute(
                select(WebSession, User)
                .join(User, User.id == WebSession.user_id)
                .where(WebSession.secret_hash == _digest(secret))
            ).first()
            if found is None:
                return None
            row, user = found
            if (
                row.expires_at <= now
                or row.last_seen_at + IDLE_TIMEOUT <= now
                or user.deleted_at is not None
            ):
                session.delete(row)
                return None
            if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
                row.last_seen_at = now
            principal = Principal(
                user_id=user.id, username=user.username, site_admin=user.site_admin
            )
            return _signed_in(row, principal)

    def sign_out(self, secret: str | None) -> None:
        """End the session whose cookie holds ``secret`` (none: nothing to do)."""
        if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
            return
        with self._store.session() as session:
            session.execute(delete(WebSession).where(WebSession.secret_hash == _digest(secret)))

    def sign_out_everywhere(self, principal: Principal) -> int:
        """End every session of ``principal``'s user; how many there were."""
        if principal.user_id is None:
            return 0
        now = self._clock()
        with self._store.session() as session:
            ended = delete_sessions(session, principal.user_id)
            write_entry(
                session,
                principal,
                "user.sign_out_everywhere",
                now=now,
                target=principal.username,
                details={"sessions": str(ended)},
            )
        log.info("user %s signed out everywhere (%d sessions)", principal.username, ended)
        return ended

    def change_password(
        self, principal: Principal, current: str, new: str, *, source: str
    ) -> NewSession:
        """Set a new password for ``principal``'s own user, who proves the ``current`` one
        (``password_wrong``; counted as a failed sign-in). Every session of the user ends,
        and a new one is returned for the browser that asked."""
        account = _account_key(principal.username)
        self._check_throttles(account, source)
        checked = self._users.check_password(principal.username, current)
        if checked is None or checked.user_id != principal.user_id:
            self._by_account.failed(account)
            self._by_source.failed(source)
            raise Unauthorized(
                "password_wrong",
                "the current password is wrong",
                "type the password you signed in with",
            )
        # Ends every session of the user, in the transaction that stores the new hash.
        self._users.set_password(principal, principal.username, new)
        return self._open(checked)

    def purge_expired(self) -> int:
        """Delete the rows of sessions that have ended, and of failed sign-ins past the
        throttle's window; how many sessions."""
        now = self._clock()
        with self._store.session() as session:
            result = session.execute(
                delete(WebSession).where(
                    or_(
                        WebSession.expires_at <= now,
                        WebSession.last_seen_at <= now - IDLE_TIMEOUT,
                    )
                )
            )
            ended = int(getattr(result, "rowcount", 0) or 0)
        self._by_account.purge()
        self._by_source.purge()
        return ended

    # -- inside ----------------------------------------------------------------------------

    def _check_throttles(self, account: str, source: str) -> None:
        until = max(
            (
                moment
                for moment in (
                    self._by_account.blocked_until(account),
                    self._by_source.blocked_until(source),
                )
                if moment is not None
            ),
            default=None,
        )
        if until is None:
            return
        minutes = max(1, ceil((until - self._clock()).total_seconds() / 60))
        log.warning("throttled a sign-in from %s", escaped(source))
        raise RateLimited(
            "signin_throttled",
            "too many failed sign-ins for this account or from this address",
            f"wait {minutes} minute{'s' if minutes != 1 else ''} and try again",
            context={"minutes": str(minutes)},
        )

    def _open(self, principal: Principal) -> NewSession:
        assert principal.user_id is not None
        self.purge_expired()
        now = self._clock()
        secret = secrets.token_urlsafe(SECRET_BYTES)
        row = WebSession(
            secret_hash=_digest(secret),
            user_id=principal.user_id,
            csrf_secret=secrets.token_urlsafe(SECRET_BYTES),
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_LIFETIME,
        )
        with self._store.session() as session:
            session.add(row)
            session.flush()
            signed_in = _signed_in(row, principal)
        return NewSession(signed_in, secret)


def _signed_in(row: WebSession, principal: Principal) -> SignedIn:
    return SignedIn(
        session_id=row.id,
        principal=principal,
        csrf_secret=row.csrf_secret,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _account_key(username: str) -> str:
    return username.strip().lower()[:_MAX_ACCOUNT_KEY]
