"""The table of prepared deploy keys: ``prepared_deploy_keys``.

A deploy key a project generated before it has the repository connection that will use it:
the Valohai article's order — generate the key, add its public half to the repository as a
read-only access key, then give the SSH URL and save. At most one per project (the project is
the primary key); the key pair is a :class:`~repolink.store.models.KeyRecord` (private half
encrypted by the vault). Saving a connection takes it: the connection's deploy key becomes
that very record, or — when the connection is saved with another key — the prepared one is
deleted. Generating again replaces it; deleting the project deletes it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from repolink.store.base import Base
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import Project
from repolink.store.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)


class PreparedDeployKey(Base):
    __tablename__ = "prepared_deploy_keys"

    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(Project.id, ondelete="CASCADE"), primary_key=True
    )
    key_record_id: Mapped[str] = mapped_column(String(32), ForeignKey(KeyRecord.id), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"PreparedDeployKey(project_id={self.project_id!r})"
