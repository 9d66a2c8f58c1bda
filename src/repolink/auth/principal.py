"""Who is asking: the principal every service call is made for, and the project roles.

A :class:`Principal` is what an adapter knows about its caller once it has authenticated it
(an API token, later a session): the user, or a site-admin token that belongs to no user.
:data:`LOCAL_ADMIN` is the CLI working on its own data directory: whoever can read the database
file is its administrator anyway, as with a self-hosted forge's admin command.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A project role; each allows what the ones below it allow."""

    VIEWER = "viewer"  # read
    MEMBER = "member"  # fetch, commits, hide/unhide
    ADMIN = "admin"  # connection, keys, members, webhooks

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, required: Role) -> bool:
        """Whether this role may do what needs ``required``."""
        return self.rank >= required.rank


_RANKS = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``user_id`` is ``None`` for a caller that is no user: the
    CLI on its data directory, the settings' admin token, an owner-less (host admin) token."""

    user_id: int | None
    username: str
    site_admin: bool


LOCAL_ADMIN = Principal(user_id=None, username="local-admin", site_admin=True)
"""The CLI on its own data directory: a site admin with no user row."""

ADMIN_TOKEN_USERNAME = "admin-token"  # noqa: S105 (a name, not a token)
"""The name the settings' bootstrap admin token acts under (in the audit log)."""
