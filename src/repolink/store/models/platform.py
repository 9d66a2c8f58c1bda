"""Tables of the platform side: projects, their repository connection, the commit index.

- ``projects``: name and unique slug.
- ``repository_connections``: one per project — the SSH URL, the deploy key (a
  :class:`~repolink.store.models.KeyRecord`), the outcome of the last fetch attempt, the
  host API the deploy key was registered on, if it was, and its polling interval, if any.
- ``commits``: every indexed commit of a connection. ``seq`` numbers commits in the order they
  were indexed, which is topological (parents first), so ``(commit_time, seq)`` is a total
  order for keyset pagination that puts a child before its parent when their times tie.
  Commit and author times are git's integer seconds: no conversion on the way in, which is
  most of the cost of indexing a large history.
- ``refs``: the branch and tag tips of the mirror as last indexed; ``commit_sha`` is the peeled
  commit (an annotated tag's ``target`` is the tag object).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from repolink.store.base import Base
from repolink.store.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)

STATE_OK = "ok"
STATE_FAILED = "failed"
STATE_UNKNOWN = "unknown"
CONNECTION_STATES = (STATE_OK, STATE_FAILED, STATE_UNKNOWN)
# Not stored: what a connection's state reads while a fetch run of it is running.
STATE_FETCHING = "fetching"

KEY_GENERATED = "generated"
KEY_IMPORTED = "imported"

# Where a connection's URL came from (``url_origin``; none: the operator's CLI).
URL_FROM_CLIENT = "client"
URL_FROM_CLIENT_OWN_HOST = "client-own-host"

REF_BRANCH = "branch"
REF_TAG = "tag"


def new_id() -> str:
    return uuid.uuid4().hex


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(62), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"Project(slug={self.slug!r})"


class RepositoryConnection(Base):
    __tablename__ = "repository_connections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), unique=True
    )
    url: Mapped[str] = mapped_column(Text)
    deploy_key_id: Mapped[str] = mapped_column(String(32), ForeignKey("key_records.id"))
    key_origin: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=STATE_UNKNOWN)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_hint: Mapped[str | None] = mapped_column(Text)
    error_reason: Mapped[str | None] = mapped_column(String(64))
    error_context: Mapped[dict[str, str] | None] = mapped_column(JSON)
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The host API root the deploy key was registered on as an access key (none: by hand).
    registered_api_root: Mapped[str | None] = mapped_column(Text)
    # Polling, for hosts that cannot send webhooks: a fetch every so many minutes (none: off),
    # next due at ``next_poll_at`` (the interval with ±10 % jitter, platform/polling.py).
    poll_interval_minutes: Mapped[int | None] = mapped_column(Integer)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who gave the URL: none — the operator (the CLI), never checked; URL_FROM_CLIENT — an API
    # client, judged by the network policy at every connection (DESIGN.md §5);
    # URL_FROM_CLIENT_OWN_HOST — an API client naming this server's own built-in host.
    url_origin: Mapped[str | None] = mapped_column(String(16))
    # Moved by the database's triggers on every change of this connection's commits and refs
    # (migration 0019): the same number twice, the same index — what a page cache is keyed by.
    index_generation: Mapped[int] = mapped_column(Integer, server_default="0")
    # The worker (jobs/identity.py) whose mirror holds this connection's last successful fetch:
    # on procrastinate its next fetch goes to that worker's queue while it runs (fetch_dispatch).
    fetched_by: Mapped[str | None] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"RepositoryConnection(id={self.id!r}, url={self.url!r}, state={self.state!r})"


class Commit(Base):
    __tablename__ = "commits"
    __table_args__ = (Index("ix_commits_listing", "connection_id", "commit_time", "seq"),)

    connection_id: Mapped[str] = mapped_column(
        String(32),
        ForeignKey("repository_connections.id", ondelete="CASCADE"),
        primary_key=True,
    )
    sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    parents: Mapped[str] = mapped_column(Text)
    author_name: Mapped[str] = mapped_column(Text)
    author_email: Mapped[str] = mapped_column(Text)
    # git's own clock: whole seconds since the epoch (UTC), as git stores them.
    author_time: Mapped[int] = mapped_column(BigInteger)
    commit_time: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(Text)
    hidden: Mapped[bool] = mapped_column(Boolean, server_default=false())

    def __repr__(self) -> str:
        return f"Commit(sha={self.sha!r})"


class Ref(Base):
    __tablename__ = "refs"
    __table_args__ = (Index("ix_refs_commit", "connection_id", "commit_sha"),)

    connection_id: Mapped[str] = mapped_column(
        String(32),
        ForeignKey("repository_connections.id", ondelete="CASCADE"),
        primary_key=True,
    )
    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    commit_sha: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"Ref(name={self.name!r}, commit_sha={self.commit_sha!r})"
