"""Users: create, list, delete, set and check passwords, and the first site admin.

A username is 1–64 of a-z, 0-9, ``.``, ``_`` and ``-``, starting with a letter or digit.
Deleting a user marks its row (renamed ``NAME#ID``), removes its memberships and revokes its
tokens in one transaction; its name may then be given to someone new.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repolink.accounts.audit import write_entry
from repolink.accounts.info import UserInfo
from repolink.auth.passwords import hash_password, password_hasher, verify_password
from repolink.auth.principal import ADMIN_TOKEN_USERNAME, LOCAL_ADMIN, Principal
from repolink.auth.principal_cache import PrincipalCache
from repolink.errors import Conflict, NotFound, ValidationError, quotable
from repolink.store import Store
from repolink.store.models.accounts import ApiToken, ProjectMember, User, delete_sessions
from repolink.store.models.user_keys import delete_user_keys
from repolink.store.types import Clock, utcnow

if TYPE_CHECKING:
    from argon2 import PasswordHasher

log = logging.getLogger(__name__)

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# Names the audit log uses for callers that are no user; a user called so would be confused
# with them. ``token-N`` is an owner-less token.
RESERVED_USERNAMES = frozenset({ADMIN_TOKEN_USERNAME, LOCAL_ADMIN.username})
_RESERVED_PATTERN = re.compile(r"token-[0-9]+")
FIRST_ADMIN_USERNAME = "admin"
# A generated one-time password: 24 url-safe characters, 144 random bits.
GENERATED_PASSWORD_BYTES = 18


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        shown = quotable(username, limit=64)
        raise ValidationError(
            "username_invalid",
            f"the username{f' {shown!r}' if shown else ''} is not 1–64 of a-z, 0-9, '.', '_' "
            "and '-' starting with a letter or digit",
            "choose a username like jane.doe",
        )
    if username in RESERVED_USERNAMES or _RESERVED_PATTERN.fullmatch(username):
        raise ValidationError(
            "username_reserved",
            f"the username {username!r} names callers that are no user in the audit log",
            "choose another username",
            context={"username": username},
        )
    return username


def get_user(session: Session, username: str) -> User:
    """The live user ``username``, or ``user_not_found`` (inside the caller's transaction)."""
    row = (
        session.scalar(select(User).where(User.username == username, User.deleted_at.is_(None)))
        if _USERNAME.fullmatch(username)
        else None
    )
    if row is None:
        shown = quotable(username, limit=64)
        raise NotFound(
            "user_not_found",
            f"there is no user {shown!r}" if shown else "there is no user with the name given",
            "list the users to see their names",
            context={"username": shown} if shown else None,
        )
    return row


class UserService:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = utcnow,
        hasher: PasswordHasher | None = None,
        principals: PrincipalCache | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._given_hasher = hasher
        # The API's memory of who tokens are: a deleted user's are revoked with it.
        self._principals = principals if principals is not None else PrincipalCache()

    @property
    def _hasher(self) -> PasswordHasher:
        # Made on first use: the commands that only list users never load argon2.
        if self._given_hasher is None:
            self._given_hasher = password_hasher()
        return self._given_hasher

    def create(
        self,
        actor: Principal,
        username: str,
        *,
        password: str | None = None,
        site_admin: bool = False,
    ) -> UserInfo:
        """A new user; with no password it cannot log in with one (tokens only)."""
        check_username(username)
        password_hash = hash_password(password, self._hasher) if password is not None else None
        with self._store.session() as session:
            if _live(session, username) is not None:
                raise _user_exists(username)
            row = User(
                username=username,
                password_hash=password_hash,
                site_admin=site_admin,
                created_at=self._clock(),
            )
            session.add(row)
            try:
                with session.begin_nested():
                    session.flush()
            except IntegrityError:
                raise _user_exists(username) from None
            write_entry(
                session,
                actor,
                "user.create",
                now=self._clock(),
                target=username,
                details={"site_admin": str(site_admin).lower()},
            )
            info = _info(row)
        log.info("created user %s%s", username, " (site admin)" if site_admin else "")
        return info

    def list_users(self) -> list[UserInfo]:
        with self._store.session() as session:
            rows = session.scalars(
                select(User).where(User.deleted_at.is_(None)).order_by(User.username)
            )
            return [_info(row) for row in rows]

    def get(self, username: str) -> UserInfo:
        with self._store.session() as session:
            return _info(get_user(session, username))

    def delete(self, actor: Principal, username: str) -> UserInfo:
        """Delete the user: its memberships, its user keys and its web sessions go, its tokens
        are revoked, at once."""
        now = self._clock()
        with self._store.session() as session:
            row = get_user(session, username)
            row.deleted_at = now
            # Frees the name: no live username holds a '#'.
            row.username = f"{username}#{row.id}"
            session.execute(delete(ProjectMember).where(ProjectMember.user_id == row.id))
            delete_user_keys(session, row.id)
            delete_sessions(session, row.id)
            session.execute(
                update(ApiToken)
                .where(ApiToken.user_id == row.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            write_entry(session, actor, "user.delete", now=now, target=username)
            info = replace(_info(row), username=username)
        self._principals.invalidate()
        log.info("deleted user %s", username)
        return info

    def set_password(self, actor: Principal, username: str, password: str) -> None:
        """Set the user's password; every web session of theirs ends with the old one."""
        password_hash = hash_password(password, self._hasher)
        with self._store.session() as session:
            row = get_user(session, username)
            row.password_hash = password_hash
            delete_sessions(session, row.id)
            write_entry(session, actor, "user.set_password", now=self._clock(), target=username)
        log.info("set the password of user %s", username)

    def check_password(self, username: str, password: str) -> Principal | None:
        """The user's principal if ``password`` is theirs, else ``None`` (one answer for an
        unknown user and a wrong password). A hash made with older parameters is replaced."""
        with self._store.session() as session:
            row = _live(session, username) if _USERNAME.fullmatch(username) else None
            if row is None:
                # Hash anyway, so an unknown name takes as long as a wrong password.
                self._hasher.hash("not a password of anyone")
                return None
            matched, rehashed = verify_password(row.password_hash, password, self._hasher)
            if not matched:
                return None
            if rehashed is not None:
                row.password_hash = rehashed
            return Principal(user_id=row.id, username=row.username, site_admin=row.site_admin)

    def ensure_site_admin(self, password: str | None) -> str | None:
        """On the very first start (no users at all), create the site admin ``admin`` with
        ``password``, or with a generated one-time password, which is returned to be shown
        once. Later: ``None``, and nothing changes."""
        with self._store.session() as session:
            if session.scalar(select(func.count()).select_from(User)):
                return None
        generated = None
        if password is None:
            generated = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        try:
            self.create(
                LOCAL_ADMIN, FIRST_ADMIN_USERNAME, password=password or generated, site_admin=True
            )
        except Conflict:
            return None  # another process made it first
        return generated


def _live(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username, User.deleted_at.is_(None)))


def _user_exists(username: str) -> Conflict:
    return Conflict(
        "user_exists",
        f"a user {username!r} exists already",
        "choose another username",
        context={"username": username},
    )


def _info(row: User) -> UserInfo:
    return UserInfo(
        id=row.id,
        username=row.username,
        site_admin=row.site_admin,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
    )
