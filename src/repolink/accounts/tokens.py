"""API tokens of users (and the owner-less site-admin tokens of the host API): create (shown
once), list, revoke, and authenticate a presented token to a principal."""

from __future__ import annotations

import logging
from datetime import timedelta

from repolink.accounts.audit import write_entry
from repolink.accounts.users import get_user
from repolink.accounts.visibility import site_admin_required
from repolink.auth import tokens
from repolink.auth.principal import Principal
from repolink.auth.principal_cache import PrincipalCache
from repolink.auth.tokens import TokenInfo
from repolink.errors import NotFound, ValidationError
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models.accounts import ApiToken
from repolink.store.types import Clock, utcnow

log = logging.getLogger(__name__)

MAX_LIFETIME = timedelta(days=3660)


class TokenService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock = utcnow,
        principals: PrincipalCache | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._principals = principals if principals is not None else PrincipalCache()

    def create(
        self,
        actor: Principal,
        username: str | None,
        name: str,
        *,
        expires_in: timedelta | None = None,
    ) -> tuple[TokenInfo, str]:
        """A token for ``username`` (``None``: an owner-less site-admin token, only for a site
        admin): its record and the token itself, which is never available again. A user may
        make tokens for themselves; a site admin for anyone."""
        if expires_in is not None and not timedelta(0) < expires_in <= MAX_LIFETIME:
            raise ValidationError(
                "token_expiry_invalid",
                "a token expires between a moment and ten years from now",
                "give a lifetime such as 30d, or none",
            )
        if not actor.site_admin and (username is None or username != actor.username):
            raise site_admin_required()
        now = self._clock()
        with self._store.session() as session:
            user_id = get_user(session, username).id if username is not None else None
            info, secret = tokens.create_token(
                session,
                name,
                user_id=user_id,
                expires_at=now + expires_in if expires_in is not None else None,
                now=now,
            )
            write_entry(
                session,
                actor,
                "token.create",
                now=now,
                target=username or "site admin token",
                details={"token_id": str(info.id), "name": info.name, "prefix": info.prefix},
            )
        return info, secret

    def list(
        self,
        actor: Principal,
        *,
        username: str | None = None,
        owner_less: bool = False,
        include_revoked: bool = False,
    ) -> list[TokenInfo]:
        """Tokens of ``username`` (a user may list their own); the owner-less site-admin
        tokens (``owner_less``); or every token (site admin)."""
        if not actor.site_admin and (username is None or username != actor.username):
            raise site_admin_required()
        with self._store.session() as session:
            user_id = get_user(session, username).id if username is not None else None
            return tokens.list_tokens(
                session, include_revoked=include_revoked, user_id=user_id, owner_less=owner_less
            )

    def revoke(self, actor: Principal, token_id: int) -> TokenInfo:
        """Revoke a token now: a site admin any, a user their own."""
        now = self._clock()
        with self._store.session() as session:
            row = session.get(ApiToken, token_id)
            if row is not None and not actor.site_admin and row.user_id != actor.user_id:
                row = None  # somebody else's token is as good as none
            if row is None:
                raise NotFound(
                    "token_not_found",
                    f"there is no active token with id {token_id}",
                    "check the id against the list of tokens",
                )
            info = tokens.revoke_token(session, token_id, now=now)
            write_entry(
                session,
                actor,
                "token.revoke",
                now=now,
                target=str(token_id),
                details={"name": info.name, "prefix": info.prefix},
            )
        self._principals.invalidate()
        return info

    def known(self, presented: str | None) -> Principal | None:
        """Who ``presented`` is when that needs no database — the settings' admin token, or
        a token looked up a moment ago (:mod:`repolink.auth.principal_cache`) — else ``None``:
        ask :meth:`authenticate`."""
        admin = tokens.admin_token_principal(self._settings, presented)
        if admin is not None:
            return admin
        presented_hash = tokens.presented_token_hash(presented)
        if presented_hash is None:
            return None
        return self._principals.get(presented_hash, self._clock())

    def authenticate(self, presented: str | None) -> Principal | None:
        """Who ``presented`` is, or ``None`` (missing, wrong, revoked, expired: one answer),
        from the database; the answer is kept for :meth:`known`."""
        # The settings' admin token needs no database; a stored one takes one read, and a
        # write only when its last use is due (once a minute at most).
        admin = tokens.admin_token_principal(self._settings, presented)
        if admin is not None or not presented:
            return admin
        now = self._clock()
        epoch = self._principals.epoch
        with self._store.reading() as connection:
            found = tokens.look_up(connection, self._settings, presented, now=now)
        if found is None or found.token_id is None:
            return None if found is None else found.principal
        if found.last_use_due:
            with self._store.session() as session:
                tokens.mark_used(session.connection(), found.token_id, now)
        self._principals.put(tokens.hash_token(presented), found.principal, found.expires_at, epoch)
        return found.principal
