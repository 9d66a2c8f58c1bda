"""A project of the pages' tests connected to the embedded host's ``team/app`` (twelve commits
on main, a branch ``feature``, tags ``v1.0`` and ``v1.1``; :func:`support.platformkit.populate`),
fetched, so the commit pages have commits to list."""

from __future__ import annotations

from repolink.app import Repolink
from repolink.settings import Settings
from repolink.store import Store
from support.platformkit import HostedRepos, Platform, granted_key


def connect_to_app(
    app: Repolink, settings: Settings, store: Store, hosted: HostedRepos, slug: str
) -> None:
    """Connect project ``slug`` (it exists) to ``team/app`` with a key granted there."""
    Platform(settings, store, hosted.host).trust_host()
    app.connections.connect(slug, hosted.app.url(), key=granted_key(hosted.host, "app", slug))
