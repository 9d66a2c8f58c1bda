"""The plain records the accounts services return (never ORM rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from repolink.auth.principal import Role


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    site_admin: bool
    has_password: bool
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "site_admin": self.site_admin,
            "has_password": self.has_password,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class MemberInfo:
    username: str
    role: Role
    added_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {"username": self.username, "role": str(self.role), "added_at": self.added_at}


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    project: str | None
    target: str | None
    details: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "project": self.project,
            "target": self.target,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class AuditPage:
    """Entries newest first; ``next_cursor`` continues after the last one (``None``: no more)."""

    items: list[AuditRecord]
    next_cursor: str | None
