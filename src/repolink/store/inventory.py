"""How much a store holds: what ``repolink info`` shows, and how a not-found error in a fresh
store knows to say which data directory it read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repolink.store.database import Store


@dataclass(frozen=True)
class Inventory:
    projects: int
    workspaces: int
    repositories: int

    @property
    def is_empty(self) -> bool:
        return not (self.projects or self.workspaces or self.repositories)


def take_inventory(store: Store) -> Inventory:
    """The counts, in plain SQL: importing every model would cost more than the command."""
    with store.plain() as db:

        def count(statement: str) -> int:
            return int(db.scalar(statement))

        return Inventory(
            projects=count("SELECT count(*) FROM projects"),
            workspaces=count("SELECT count(*) FROM host_workspaces"),
            repositories=count("SELECT count(*) FROM host_repositories"),
        )
