"""Tables of the built-in host: workspaces, hosted repositories, account and access keys.

Keys are stored as their public OpenSSH line without the comment (the comment is kept apart)
and found by their exact SHA256 fingerprint. Child rows go with their parent through
``ON DELETE CASCADE``; the unique constraints, which lead with the parent's id, double as
the indexes for "children of". Ids are never reused (``sqlite_autoincrement``), so a removed
key's id cannot come back naming another key.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from repolink.store.base import Base
from repolink.store.types import UTCDateTime, utcnow


def new_repository_id() -> str:
    return uuid.uuid4().hex


class Workspace(Base):
    __tablename__ = "host_workspaces"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(62), unique=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HostedRepository(Base):
    """A bare repository on disk at a path derived from ``id`` (a uuid4 hex string)."""

    __tablename__ = "host_repositories"
    __table_args__ = (UniqueConstraint("workspace_id", "slug"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_repository_id)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("host_workspaces.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(62))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    description: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))


class AccountKey(Base):
    """A person's key on a workspace: reads and pushes every repository of it."""

    __tablename__ = "host_account_keys"
    __table_args__ = (
        UniqueConstraint("workspace_id", "fingerprint_sha256"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("host_workspaces.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    key_type: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text, default="")
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint_md5: Mapped[str] = mapped_column(String(64))
    added_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccessKey(Base):
    """A key added to one repository: reads it, and pushes to it when ``writable``."""

    __tablename__ = "host_access_keys"
    __table_args__ = (
        UniqueConstraint("repository_id", "fingerprint_sha256"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[str] = mapped_column(
        ForeignKey("host_repositories.id", ondelete="CASCADE")
    )
    label: Mapped[str] = mapped_column(String(200))
    key_type: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text, default="")
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint_md5: Mapped[str] = mapped_column(String(64))
    writable: Mapped[bool] = mapped_column(Boolean, default=False)
    added_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)
