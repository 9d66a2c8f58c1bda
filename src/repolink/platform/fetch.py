"""One fetch of a connection: git over ssh into the mirror, then the new commits indexed.

Every step follows architecture.md#security, through :func:`repolink.git.remote.open_remote`: the
deploy key goes into a 0600 file inside a 0700 run directory
(:func:`repolink.git.keyfiles.private_key_file`) together with the run's known_hosts file (exactly
the keys :func:`repolink.knownhosts.trusted_keys` holds for the host), both removed when the run
ends however it ends; git and ssh get :func:`repolink.git.environment.hardened_env` and ssh's option
set from :func:`repolink.git.environment.ssh_command`; the URL reaches git only as
``SSHURL.git_url`` after
``--``.

Fast refresh: SSH connections are shared between runs (:mod:`repolink.git.sharing`), and
the remote's refs, listed over that connection, are compared with the mirror's first — when
they are equal the fetch is skipped (:attr:`FetchResult.skipped`). With a live shared
connection that listing starts no process at all
(:func:`repolink.git.sharing.list_refs_through_master`), and the deploy key is only
checked to decrypt: it is parsed and written to a key file only to authenticate a new
connection. Without a live one, ``git ls-remote`` lists the refs and leaves a shared connection
behind for the next run; after a shared connection stalled, this run uses a connection of its
own.

The outcome is recorded on the connection (state ``ok``/``failed``, code, message, fix, when)
and a success marks the key used. Failures raise the one error
:mod:`repolink.git.diagnosis` names.

A fetch uses the project's preferred checkout key: its newest user key, else the deploy key
(:mod:`repolink.platform.checkout_keys`, CircleCI's rule). It may be told another key
(``key_record_id``): that is how a key rotation proves its new key
(:mod:`repolink.platform.rotation`). Such a fetch's failure is not recorded on the connection,
whose state describes the key its fetches use. A retired key is never used.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from repolink import knownhosts
from repolink.errors import Conflict, KeyFormatError, NotFound, RepolinkError
from repolink.git import mirrors, sharing
from repolink.git.cancel import CANCELLED, CancellableRunner
from repolink.git.diagnosis import invalid_private_key
from repolink.git.environment import FSCK_ON_RECEIVE, git_argv
from repolink.git.progress import (
    INDEXING,
    FetchProgress,
    ProgressCallback,
    parse_progress_line,
)
from repolink.git.refs import pack_loose_refs
from repolink.git.remote import Remote, open_remote
from repolink.git.runner import GitRunner
from repolink.git.sshmux import MuxTimeout, NoMaster
from repolink.keys import PrivateKey
from repolink.knownhosts import TrustedHostKey
from repolink.platform.connections import (
    get_connection,
    parse_connection_url,
    record_failure,
    record_success,
)
from repolink.platform.fetch_result import FetchResult as FetchResult  # re-exported
from repolink.platform.index import IndexProgress, IndexResult, index_mirror
from repolink.platform.scout import Scout
from repolink.platform.targets import connection_pin
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.key_records import get_key_record, mark_used
from repolink.store.key_use import check_decryptable, decrypt_private_key
from repolink.store.models.platform import Project, RepositoryConnection
from repolink.store.models.user_keys import preferred_key_id
from repolink.store.types import Clock
from repolink.urls import SSHURL
from repolink.vault import Vault, VaultLoader

log = logging.getLogger(__name__)

REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


@dataclass(frozen=True)
class _Plan:
    """What a run needs, read from the store in one transaction. The deploy key stays
    encrypted until :meth:`private_key` is asked for it."""

    project: str
    connection_id: str
    key_record_id: str
    key_fingerprint: str
    key_token: bytes | None = field(repr=False)
    vault: Vault = field(repr=False)
    url: SSHURL
    trusted: list[TrustedHostKey]
    url_origin: str | None = None
    pinned_address: str | None = None
    """The checked address ssh connects to, for a client's URL (:meth:`FetchService._pin`)."""

    def private_key(self) -> PrivateKey:
        try:
            return decrypt_private_key(self.vault, self.key_record_id, self.key_token)
        except KeyFormatError as exc:
            raise invalid_private_key(exc) from None


class FetchService:
    """Fetches of repository connections: each brings the mirror up to date and indexes it.

    A fetch reads what it needs in one short transaction (:class:`_Plan`), runs git with no
    transaction open, indexes in transactions of its own, then records the outcome in one more.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        vault: VaultLoader,
        *,
        runner: GitRunner,
        clock: Clock = utcnow,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._runner = runner
        self._clock = clock
        self._warm = False
        # The control sockets of this process's fetches in flight: never closed under them.
        self._in_flight: Counter[Path] = Counter()
        self._in_flight_lock = threading.Lock()
        # The sockets this process's fetches used: the only ones closed as a fetch ends.
        self._used: set[Path] = set()
        # One pass of closing at a time: two would both ``-O exit`` one master.
        self._closing_lock = threading.Lock()

    def keep_connections_warm(self) -> None:
        """From now on, shared SSH connections outlive their last use by the settings'
        ``server_ssh_control_persist``: what a long-lived server's fetch worker asks for, so
        its refreshes start no process and do no handshake (:mod:`repolink.git.sharing`) — and
        after each fetch those beyond ``server_max_warm_connections`` are closed. Bounded only
        by a periodic pass, a worker fetching many repositories held far more for a while: four
        workers held the built-in host's 256 (``REPOLINK_SSH_MAX_CONNECTIONS``) and its next
        fetches were refused, each retried 10 s later."""
        persist = self._settings.server_ssh_control_persist
        self._settings = self._settings.model_copy(update={"ssh_control_persist": persist})
        self._warm = True

    @property
    def progress_interval(self) -> float:
        """How often, at most, a fetch run records its progress (``fetch_progress_interval``)."""
        return self._settings.fetch_progress_interval

    def close_least_used_connections(self, *, own: bool = False) -> list[Path]:
        """Close the shared SSH connections beyond the ``server_max_warm_connections`` most
        recently used — with ``own``, of those this process's fetches used; the control
        sockets closed."""
        with self._closing_lock:
            with self._in_flight_lock:
                spare = set(self._in_flight)
                among = set(self._used) if own else None
            closed = sharing.close_least_used(
                self._settings,
                keep=self._settings.server_max_warm_connections,
                env=mirrors.local_env(self._settings),
                runner=self._runner,
                spare=spare,
                among=among,
            )
            with self._in_flight_lock:
                self._used.difference_update(closed)
            return closed

    @contextlib.contextmanager
    def _bounded_sharing(self, plan: _Plan) -> Iterator[None]:
        """Run the body (a fetch) with its shared connection spared by the bound, which a
        server enforces when the fetch ends (:meth:`keep_connections_warm`)."""
        if not self._warm:
            yield
            return
        socket = _control_socket(self._settings, plan)
        if socket is not None:
            with self._in_flight_lock:
                self._in_flight[socket] += 1
                self._used.add(socket)
        try:
            yield
        finally:
            if socket is not None:
                with self._in_flight_lock:
                    self._in_flight[socket] -= 1
                    if self._in_flight[socket] <= 0:
                        del self._in_flight[socket]
            try:
                self.close_least_used_connections(own=True)
            except Exception:  # the bound is housekeeping: the fetch's outcome stands
                log.warning("cannot close the least used SSH connections", exc_info=True)

    def fetch_project(
        self,
        project: str,
        *,
        on_progress: ProgressCallback | None = None,
        on_lock_wait: Callable[[], None] | None = None,
    ) -> FetchResult:
        """Fetch the repository of ``project`` into its mirror and index the new commits."""
        return self._fetch(
            lambda session: get_connection(session, project),
            on_progress=on_progress,
            on_lock_wait=on_lock_wait,
            key_record_id=None,
        )

    def fetch_connection(
        self,
        connection_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        on_lock_wait: Callable[[], None] | None = None,
        key_record_id: str | None = None,
        cancel: threading.Event | None = None,
        refs_changed: bool = False,
    ) -> FetchResult:
        """:meth:`fetch_project` for a connection id (what a job queue holds).

        ``key_record_id``: fetch with that key record instead of the deploy key; a failure then
        leaves the connection's state alone. ``cancel``: setting it stops the fetch's git
        (:class:`repolink.git.cancel.CancellableRunner`) and raises ``cancelled``, which leaves
        the connection's state alone too; the mirror stays consistent (a ref is updated only
        once its objects are in) and what the stopped git left is repaired before the next
        fetch (:func:`repolink.git.mirrors.prepare`). ``refs_changed``: the caller knows the
        remote's refs moved (a push to this server's own host), so they are not listed and
        compared with the mirror's first; git fetch runs at once.
        """
        return self._fetch(
            lambda session: _connection_by_id(session, connection_id),
            on_progress=on_progress,
            on_lock_wait=on_lock_wait,
            key_record_id=key_record_id,
            cancel=cancel,
            refs_changed=refs_changed,
        )

    def _fetch(
        self,
        find: Callable[[Session], RepositoryConnection],
        *,
        on_progress: ProgressCallback | None,
        on_lock_wait: Callable[[], None] | None,
        key_record_id: str | None,
        cancel: threading.Event | None = None,
        refs_changed: bool = False,
    ) -> FetchResult:
        attempted_at = self._clock()
        runner = self._runner if cancel is None else CancellableRunner(self._runner, cancel)
        started = time.monotonic()
        unplanned: RepolinkError | None = None
        with self._store.session() as session:
            # No connection: nothing to record the failure on, so it is raised as it is.
            connection = find(session)
            connection_id = connection.id
            owner = session.get(Project, connection.project_id)
            project = owner.slug if owner is not None else connection.project_id
            try:
                plan = self._plan(session, connection, project, key_record_id)
            except RepolinkError as exc:
                unplanned = exc
        try:
            if unplanned is not None:
                raise unplanned
            # Before any process starts, with no transaction open: resolving may take seconds.
            plan = self._pin(plan)
            with self._bounded_sharing(plan):
                result = _Run(self._settings, self._store, plan, runner).run(
                    attempted_at, started, on_progress, on_lock_wait, compare=not refs_changed
                )
        except RepolinkError as exc:
            if exc.code == CANCELLED:
                log.info("fetch of connection %s cancelled", connection_id)
                raise
            # The project names the fix's commands ("fetch P again", "add P's key …"), live
            # and as stored with the diagnosis.
            exc.context = {"project": project, **exc.context}
            self._failed(connection_id, key_record_id, attempted_at, exc)
            raise
        finished_at = self._clock()
        with self._store.session() as session:
            record_success(
                session, connection_id, attempted_at=attempted_at, finished_at=finished_at
            )
            # The key may be gone by now: disconnected, or a pending rotation key discarded.
            with contextlib.suppress(NotFound):
                mark_used(session, plan.key_record_id, finished_at)
        return result

    def _plan(
        self,
        session: Session,
        connection: RepositoryConnection,
        project: str,
        key_record_id: str | None,
    ) -> _Plan:
        url = parse_connection_url(connection.url)
        record = get_key_record(session, key_record_id or preferred_key_id(session, connection))
        if record.retired_at is not None:
            raise Conflict(
                "key_retired",
                f"the key {record.fingerprint_sha256} was retired; a retired key is never used",
                "fetch with the project's deploy key",
                context={"project": project},
            )
        # Loaded only now: a look-up that found nothing has created no master key file.
        vault = self._vault()
        # A key that cannot be used fails every fetch, the ones that skip too.
        check_decryptable(vault, record.id, record.private_key_encrypted)
        return _Plan(
            project=project,
            connection_id=connection.id,
            key_record_id=record.id,
            key_fingerprint=record.fingerprint_sha256,
            key_token=record.private_key_encrypted,
            vault=vault,
            url=url,
            trusted=knownhosts.trusted_keys(session, *url.host_port),
            url_origin=connection.url_origin,
        )

    def _pin(self, plan: _Plan) -> _Plan:
        """``plan`` with the address its ssh must connect to, when its URL came from an API
        client: the host resolved once, now, and judged by the network policy
        (``repository_url_forbidden``, recorded on the connection and not retried), so a name
        that resolves elsewhere since it was given reaches nothing the policy refuses."""
        pinned = connection_pin(self._settings.network_policy, plan.url, plan.url_origin)
        return plan if pinned is None else replace(plan, pinned_address=pinned)

    def _failed(
        self,
        connection_id: str,
        key_record_id: str | None,
        attempted_at: datetime,
        error: RepolinkError,
    ) -> None:
        if key_record_id is not None:
            log.info(
                "fetch of connection %s with another key failed: %s", connection_id, error.code
            )
            return
        with self._store.session() as session:
            record_failure(
                session,
                connection_id,
                attempted_at=attempted_at,
                error=error,
            )
        log.info("fetch of connection %s failed: %s", connection_id, error.code)


def _connection_by_id(session: Session, connection_id: str) -> RepositoryConnection:
    connection = session.get(RepositoryConnection, connection_id)
    if connection is None:
        raise NotFound(
            "connection_not_found",
            f"there is no repository connection {connection_id}",
            "it was removed; connect the project again",
        )
    return connection


class _Run:
    """The git side of one fetch: no database transaction is open while it runs git."""

    def __init__(self, settings: Settings, store: Store, plan: _Plan, runner: GitRunner) -> None:
        self._settings = settings
        self._store = store
        self._plan = plan
        self._runner = runner

    def run(
        self,
        attempted_at: datetime,
        started: float,
        on_progress: ProgressCallback | None,
        on_lock_wait: Callable[[], None] | None,
        *,
        compare: bool = True,
    ) -> FetchResult:
        settings, plan = self._settings, self._plan
        path = mirrors.mirror_path(settings, plan.connection_id)
        local = mirrors.local_env(settings)
        with mirrors.locked(path, timeout=2 * settings.git_timeout, on_wait=on_lock_wait) as lock:
            repaired = mirrors.prepare(path, lock)
            # The scout indexes without reporting: its count would interleave with the clone's.
            update = _update_mirror(
                settings, plan, path, local, on_progress, self._index, self._runner, compare
            )
            scouted = update.scouted

            def indexed(count: int) -> None:
                if on_progress is not None:
                    on_progress(FetchProgress(INDEXING, done=scouted + count))

            if scouted:
                indexed(0)
            indexed_now = self._index(path, indexed, update.unchanged)
        new_commits = scouted + indexed_now.new_commits
        log.info(
            "fetched %s (%s): %s, %d new commits",
            plan.project,
            plan.url.canonical,
            "nothing changed, fetch skipped" if update.skipped else "fetched",
            new_commits,
        )
        return FetchResult(
            project=plan.project,
            connection_id=plan.connection_id,
            skipped=update.skipped,
            new_commits=new_commits,
            removed_commits=indexed_now.removed_commits,
            refs=indexed_now.refs,
            waited_for_lock=lock.waited,
            repaired=tuple(repaired),
            attempted_at=attempted_at,
            duration=time.monotonic() - started,
        )

    def _index(
        self,
        repository: Path,
        on_count: IndexProgress | None = None,
        targets: dict[str, str] | None = None,
    ) -> IndexResult:
        return index_mirror(
            self._store,
            self._plan.connection_id,
            repository,
            env=mirrors.local_env(self._settings),
            timeout=self._settings.git_timeout,
            runner=self._runner,
            on_progress=on_count,
            targets=targets,
        )


@dataclass(frozen=True)
class _MirrorUpdate:
    """What :func:`_update_mirror` did. ``unchanged``: the mirror's ref targets when the fetch
    was skipped (the index needs not read them again). ``scouted``: commits the scout of a
    first fetch indexed already."""

    unchanged: dict[str, str] | None = None
    scouted: int = 0

    @property
    def skipped(self) -> bool:
        return self.unchanged is not None


def _update_mirror(
    settings: Settings,
    plan: _Plan,
    path: Path,
    local: Mapping[str, str],
    on_progress: ProgressCallback | None,
    index: Callable[[Path], IndexResult],
    runner: GitRunner,
    compare: bool = True,
) -> _MirrorUpdate:
    """Fetch into the mirror unless its refs already equal the remote's (``compare`` off:
    fetch without asking; git fetch finds what moved all the same).

    An empty mirror (a first fetch) is cloned (:func:`repolink.git.mirrors.first_fetch`)
    without listing the remote's refs first: there is nothing to compare them with, and that
    listing would cost a round trip to the server. A scout (:mod:`repolink.platform.scout`)
    fetches and indexes its commits with ``index`` meanwhile.
    """
    mirrored = mirrors.read_ref_targets(path, env=local, runner=runner)
    listed: dict[str, str] | None = None
    share = True
    if mirrored and compare:
        try:
            listed = _list_on_shared_connection(settings, plan)
        except MuxTimeout:
            share = False  # the shared connection stalled: git would wait on it all the same
        if listed == mirrored:
            return _MirrorUpdate(unchanged=mirrored)
    with open_remote(
        settings,
        plan.url,
        plan.private_key(),
        trusted=plan.trusted,
        runner=runner,
        share=share,
        pinned_address=plan.pinned_address,
    ) as remote:
        if mirrored and compare and listed is None and remote.ls_remote() == mirrored:
            return _MirrorUpdate(unchanged=mirrored)
        with mirrors.fetching(path):
            if mirrored:
                _fetch(remote, path, on_progress)
                pack_loose_refs(path, env=local, runner=runner)
                return _MirrorUpdate()
            with (
                mirrors.first_fetch(path, env=local, runner=runner) as destination,
                Scout(remote, path, index, settings=settings) as scout,
            ):
                _fetch(remote, destination, _both(scout.observe, on_progress), clone=True)
        return _MirrorUpdate(scouted=scout.new_commits)


def _fetch(
    remote: Remote, path: Path, on_progress: ProgressCallback | None, *, clone: bool = False
) -> None:
    def progress_line(line: str) -> None:
        if on_progress is None:
            return
        progress = parse_progress_line(line)
        if progress is not None:
            on_progress(progress)

    if clone:
        run = remote.run(mirrors.clone_argv(remote.url.git_url, path), on_stderr_line=progress_line)
        if not run.ok:
            raise remote.failure(run, "fetching")
        return
    argv = git_argv(
        *FSCK_ON_RECEIVE,
        "fetch",
        "--prune",
        "--progress",
        "--no-write-fetch-head",
        "--no-auto-maintenance",
        "--no-recurse-submodules",
        "--",
        remote.url.git_url,
        *REFSPECS,
        git_dir=path,
    )
    run = remote.run(argv, on_stderr_line=progress_line)
    if not run.ok:
        raise remote.failure(run, "fetching")


def _both(first: ProgressCallback, second: ProgressCallback | None) -> ProgressCallback:
    if second is None:
        return first

    def report(progress: FetchProgress) -> None:
        first(progress)
        second(progress)

    return report


def _control_socket(settings: Settings, plan: _Plan) -> Path | None:
    """The control socket of the plan's shared connection (``None``: no sharing)."""
    return sharing.control_path(
        settings,
        url=plan.url,
        key_fingerprint=plan.key_fingerprint,
        known_hosts=knownhosts.known_hosts_lines(plan.trusted),
        pinned_address=plan.pinned_address,
    )


def _list_on_shared_connection(settings: Settings, plan: _Plan) -> dict[str, str] | None:
    """The remote's refs, listed as a passenger of a live shared connection; ``None`` when
    there is none (or it fails: git ls-remote then lists them, or names the error).
    :class:`repolink.git.sshmux.MuxTimeout` when the connection did not answer in time."""
    control = _control_socket(settings, plan)
    if control is None:
        return None
    try:
        return sharing.list_refs_through_master(
            control,
            plan.url,
            mirrors.LISTED_REF_PREFIXES,
            timeout=min(settings.git_timeout, settings.ssh_connect_timeout),
        )
    except NoMaster:
        return None
