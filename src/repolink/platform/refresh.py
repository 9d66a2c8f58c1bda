"""``repolink fetch P`` as a process: a refresh that finds nothing to fetch, decided with plain
reads and without importing the ORM or the fetch machinery (issue 10 §2); anything else is
:meth:`repolink.platform.fetch.FetchService.fetch_project`'s, imported only then.

The shortcut takes the common no-op case only: the project's fetches use its deploy key (no
user key is preferred to it), the URL is the operator's (no address to pin and judge), and its
SSH connection can be shared. Then, as the full fetch would: the deploy key must decrypt (a key
that cannot be used fails every fetch, the ones that skip too); under the mirror's lock, the
mirror's refs are read and compared with the remote's and with the index's. The remote's are
listed as a passenger of the shared SSH connection of an earlier run when one is alive (no
process, no handshake); when none is (or only the socket of a master gone is left), and the
connection's last fetch went well, by one ``git ls-remote`` whose ssh becomes that shared
connection for the runs after it, as the full fetch's would. All equal, the outcome is written
in one transaction (connection ``ok``, key used) through the same statements the full fetch
writes. Whenever anything differs, is missing or fails, the full fetch runs from the start and
decides, records and reports as ever — a listing that failed is tried once more by it, which
the last state bounds to the first failure after a success: the next run finds the state it
recorded and goes to it directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repolink.errors import RepolinkError
from repolink.git import mirrors, sharing
from repolink.git.runner import GitRunner
from repolink.git.sshmux import MuxTimeout, NoMaster
from repolink.knownhosts.trusted import known_hosts_lines, trusted_keys_plain
from repolink.platform.fetch_outcome import STATE_OK, record_fetch_success
from repolink.platform.fetch_result import FetchResult
from repolink.settings import Settings
from repolink.store.clock import Clock, utcnow
from repolink.store.key_use import check_decryptable, decrypt_private_key, mark_key_used
from repolink.urls import SSHURL, parse_ssh_url
from repolink.vault import VaultLoader

if TYPE_CHECKING:
    from repolink.git.progress import ProgressCallback
    from repolink.knownhosts.values import TrustedHostKey
    from repolink.platform.fetch import FetchService
    from repolink.store import Store

log = logging.getLogger(__name__)

# The connection, its deploy key, and whether a user key would be preferred to it
# (repolink.store.models.user_keys.preferred_key_id: then the full fetch chooses).
_CONNECTION = (
    "SELECT c.id AS connection_id, c.url, c.url_origin, c.state, k.id AS key_id,"
    " k.fingerprint_sha256, k.retired_at, k.private_key_encrypted,"
    " EXISTS (SELECT 1 FROM user_keys u WHERE u.project_id = p.id) AS has_user_key"
    " FROM projects p JOIN repository_connections c ON c.project_id = p.id"
    " JOIN key_records k ON k.id = c.deploy_key_id WHERE p.slug = :slug"
)
# What the index holds: the mark of what has been indexed (repolink.platform.index).
_INDEXED = "SELECT name, target FROM refs WHERE connection_id = :connection_id"


class RefreshService:
    """Fetches as a person asks for them from a shell: a no-op refresh answered cheaply,
    every other fetch carried out by the fetch service (``fetches``, built on first use)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        vault: VaultLoader,
        fetches: Callable[[], FetchService],
        *,
        runner: GitRunner,
        clock: Clock = utcnow,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._fetches = fetches
        self._runner = runner
        self._clock = clock

    def fetch_project(
        self, project: str, *, on_progress: ProgressCallback | None = None
    ) -> FetchResult:
        """Fetch the repository of ``project`` into its mirror and index the new commits —
        :meth:`FetchService.fetch_project`, unless nothing changed (see the module text)."""
        unchanged = self.unchanged(project)
        if unchanged is not None:
            return unchanged
        return self._fetches().fetch_project(project, on_progress=on_progress)

    def unchanged(self, project: str) -> FetchResult | None:
        """The no-op fetch of ``project``, recorded, when nothing changed and the shortcut
        applies (see the module text); ``None`` — having written nothing — otherwise."""
        attempted_at = self._clock()
        started = time.monotonic()
        settings = self._settings
        with self._store.plain() as db:
            found = db.rows(_CONNECTION, {"slug": project})
            if not found:
                return None
            row = found[0]
            if row["has_user_key"] or row["url_origin"] is not None or row["retired_at"]:
                return None
            url = _parsed(row["url"])
            if url is None:
                return None
            trusted = trusted_keys_plain(db, *url.host_port)
            connection_id: str = row["connection_id"]
            indexed = {
                r["name"]: r["target"] for r in db.rows(_INDEXED, {"connection_id": connection_id})
            }
        control = sharing.control_path(
            settings,
            url=url,
            key_fingerprint=row["fingerprint_sha256"],
            known_hosts=known_hosts_lines(trusted),
        )
        if control is None:
            return None
        if not control.exists() and row["state"] != STATE_OK:
            return None  # it failed last time: the full fetch diagnoses and records, once
        try:
            check_decryptable(self._vault(), row["key_id"], row["private_key_encrypted"])
        except RepolinkError:
            return None  # the full fetch fails the same way and records it on the connection
        path = mirrors.mirror_path(settings, connection_id)
        with mirrors.locked(path, timeout=2 * settings.git_timeout) as lock:
            repaired = mirrors.prepare(path, lock)
            mirrored = mirrors.read_ref_targets(
                path, env=mirrors.local_env(settings), runner=self._runner
            )
            if not mirrored or mirrored != indexed:
                return None
            try:
                listed = sharing.list_refs_through_master(
                    control,
                    url,
                    mirrors.LISTED_REF_PREFIXES,
                    timeout=min(settings.git_timeout, settings.ssh_connect_timeout),
                )
            except MuxTimeout:
                return None
            except NoMaster:
                if row["state"] != STATE_OK:
                    return None
                listed = self._listed_opening_connection(url, row, trusted, control)
            if listed != mirrored:
                return None
        finished_at = self._clock()
        with self._store.plain(write=True) as db:
            record_fetch_success(
                db, connection_id, attempted_at=attempted_at, finished_at=finished_at
            )
            mark_key_used(db, row["key_id"], finished_at)
        log.info("fetched %s (%s): nothing changed, fetch skipped", project, url.canonical)
        return FetchResult(
            project=project,
            connection_id=connection_id,
            skipped=True,
            new_commits=0,
            removed_commits=0,
            refs=len(mirrored),
            waited_for_lock=lock.waited,
            repaired=tuple(repaired),
            attempted_at=attempted_at,
            duration=time.monotonic() - started,
        )

    def _listed_opening_connection(
        self,
        url: SSHURL,
        row: Mapping[str, Any],
        trusted: Sequence[TrustedHostKey],
        control: Path,
    ) -> dict[str, str] | None:
        """The remote's refs by ``git ls-remote`` over the session the full fetch would open,
        whose ssh stays as the shared connection at ``control``; ``None`` when that fails."""
        from repolink.git.remote import open_remote

        try:
            key = decrypt_private_key(self._vault(), row["key_id"], row["private_key_encrypted"])
            with open_remote(
                self._settings, url, key, trusted=trusted, runner=self._runner
            ) as remote:
                if remote.control_path != control:
                    return None
                return remote.ls_remote()
        except RepolinkError as exc:
            log.info("listing %s failed (%s): the full fetch decides", url.canonical, exc.code)
            return None


def _parsed(text: str) -> SSHURL | None:
    try:
        return parse_ssh_url(text)
    except RepolinkError:
        return None
