"""What one fetch did: the record :class:`repolink.platform.fetch.FetchService` and
:class:`repolink.platform.refresh.RefreshService` answer, in a module that imports neither's
machinery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FetchResult:
    """What one fetch did. ``skipped``: the remote's refs equalled the mirror's, so git fetch
    was not run. ``waited_for_lock``: another fetch of this mirror ran first."""

    project: str
    connection_id: str
    skipped: bool
    new_commits: int
    removed_commits: int
    refs: int
    waited_for_lock: bool
    repaired: tuple[str, ...]
    attempted_at: datetime
    duration: float

    def summary_lines(self) -> list[str]:
        """What a person is told of it, a line each (``repolink fetch`` prints them)."""
        lines = ["up to date: the remote's refs equal the mirror's"] if self.skipped else []
        if self.removed_commits:
            lines.append(f"{self.removed_commits} commits no longer on any branch or tag")
        noun = "commit" if self.new_commits == 1 else "commits"
        return [*lines, f"{self.new_commits} new {noun}"]

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "connection_id": self.connection_id,
            "skipped": self.skipped,
            "new_commits": self.new_commits,
            "removed_commits": self.removed_commits,
            "refs": self.refs,
            "waited_for_lock": self.waited_for_lock,
            "repaired": list(self.repaired),
            "attempted_at": self.attempted_at.isoformat(),
            "duration": round(self.duration, 3),
        }
