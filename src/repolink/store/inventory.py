"""How much a store holds: what ``repolink info`` shows, and how a not-found error in a fresh
store knows to say which data directory it read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

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
    with store.session() as session:

        def count(statement: str) -> int:
            return int(session.execute(text(statement)).scalar_one())

        return Inventory(
            projects=count("SELECT count(*) FROM projects"),
            workspaces=count("SELECT count(*) FROM host_workspaces"),
            repositories=count("SELECT count(*) FROM host_repositories"),
        )
