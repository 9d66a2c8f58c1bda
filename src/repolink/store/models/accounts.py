"""Tables of accounts: users, project members, API tokens and the audit log.

- ``users``: a unique username, an argon2 password hash (none: cannot log in with a password),
  the site-admin flag. Deleting a user marks the row (``deleted_at``) rather than removing it,
  so the tokens it owned stay on record, revoked; its username becomes ``NAME#ID`` (``#`` is
  in no live username), which frees the name for someone new with a plain unique constraint
  (a partial index would need a dialect's options, and loading PostgreSQL's on SQLite).
- ``project_members``: one role per (project, user).
- ``api_tokens``: bearer tokens, known only by their SHA-256. A token belongs to a user; a token
  with no owner is a site-admin token of the host API (made before users existed, or by
  ``host token create``). ``prefix`` is the token's first characters, shown in lists so a
  person can tell which token leaked.
- ``sessions``: a person signed in to the web pages, known only by the SHA-256 of the secret
  their cookie holds (as a token is); the CSRF secret of that sign-in; when it began, was last
  seen and ends at the latest. Deleting rows signs out.
- ``signin_failures``: failed sign-ins within the throttle's window, by account and by
  source address, shared by every server process on the database; older rows are deleted.
- ``audit_log``: who did what, when, to what. The project is kept by id and by slug, with no
  foreign key: the trail outlives the project. Details never hold key material or secrets.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    delete,
    false,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

# Imported for its table: project_members refers to projects.
import repolink.store.models.platform  # noqa: F401
from repolink.store.base import Base
from repolink.store.types import UTCDateTime, utcnow

MAX_USERNAME_LENGTH = 64
MAX_THROTTLE_KEY = 100


class User(Base):
    __tablename__ = "users"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Room for a deleted user's NAME#ID.
    username: Mapped[str] = mapped_column(String(MAX_USERNAME_LENGTH + 24), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    site_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        # Never the password hash.
        return f"User(id={self.id!r}, username={self.username!r})"


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"ProjectMember(project_id={self.project_id!r}, user_id={self.user_id!r}, "
            f"role={self.role!r})"
        )


class ApiToken(Base):
    """A bearer token of the HTTP APIs, known only by its SHA-256."""

    __tablename__ = "api_tokens"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), default="", server_default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"ApiToken(id={self.id!r}, name={self.name!r})"


class WebSession(Base):
    """A sign-in to the web pages, known only by the SHA-256 of its cookie's secret."""

    __tablename__ = "sessions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The absolute end; the idle end is last_seen_at plus the idle timeout.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        # Never the hash or the CSRF secret.
        return f"WebSession(id={self.id!r}, user_id={self.user_id!r})"


def delete_sessions(session: Session, user_id: int) -> int:
    """End every web session of ``user_id`` in the caller's transaction; how many."""
    result = session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


class SigninFailure(Base):
    """A failed sign-in, counted under a scope (``account``, ``source``) and a key (the
    name as typed, the client's address) while it is within the throttle's window."""

    __tablename__ = "signin_failures"
    __table_args__ = (
        Index("ix_signin_failures_scope_key_at", "scope", "key", "at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(MAX_THROTTLE_KEY))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        return f"SigninFailure(id={self.id!r}, scope={self.scope!r})"


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_project_id_id", "project_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(MAX_USERNAME_LENGTH))
    action: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(32))
    project_slug: Mapped[str | None] = mapped_column(String(62))
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, str] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"AuditEntry(id={self.id!r}, action={self.action!r})"
