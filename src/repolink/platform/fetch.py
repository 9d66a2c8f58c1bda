"""One fetch of a connection: git over ssh into the mirror, then the new commits indexed.

Every step follows DESIGN.md §5: the deploy key goes into a 0600 file inside a 0700 run
directory (:func:`repolink.gitcli.private_key_file`) together with the run's known_hosts file
(:func:`repolink.hostkeys.known_hosts_text`), both removed when the run ends however it ends;
git and ssh get :func:`repolink.gitcli.hardened_env` and ssh's option set from
:func:`repolink.gitcli.ssh_command`; the URL reaches git only as ``SSHURL.git_url`` after ``--``.

Fast refresh: SSH connections are shared between runs (:mod:`repolink.platform.sharing`), and
``git ls-remote`` over that connection is compared with the mirror's refs first — when they are
equal the fetch is skipped (:attr:`FetchResult.skipped`).

The outcome is recorded on the connection (state ``ok``/``failed``, code, message, fix, when)
and a success marks the deploy key used. Failures raise the one error
:mod:`repolink.platform.diagnosis` names.
"""

from __future__ import annotations

import logging
import os
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from repolink import gitcli, hostkeys
from repolink.errors import GitError, KeyFormatError, NotFound, RepolinkError
from repolink.hostkeys import TrustedHostKey
from repolink.keys import PrivateKey
from repolink.platform import mirror
from repolink.platform.connections import (
    get_connection,
    parse_connection_url,
    record_failure,
    record_success,
)
from repolink.platform.diagnosis import FetchError, diagnose, invalid_private_key
from repolink.platform.index import index_mirror
from repolink.platform.mirror import MirrorRef
from repolink.platform.models import Project, RepositoryConnection
from repolink.platform.progress import (
    INDEXING,
    FetchProgress,
    ProgressCallback,
    parse_progress_line,
)
from repolink.platform.sharing import control_path
from repolink.services.key_records import load_private_key, mark_used
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.urls import SSHURL
from repolink.vault import Vault, load_vault

log = logging.getLogger(__name__)

REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
KNOWN_HOSTS_NAME = "known_hosts"


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


@dataclass(frozen=True)
class _Plan:
    """What a run needs, read from the store in one transaction."""

    project: str
    connection_id: str
    key_record_id: str
    url: SSHURL
    key: PrivateKey
    known_hosts: str
    trusted: list[TrustedHostKey]


def fetch_project(
    store: Store,
    settings: Settings,
    project: str,
    *,
    vault: Vault | None = None,
    on_progress: ProgressCallback | None = None,
    on_lock_wait: Callable[[], None] | None = None,
) -> FetchResult:
    """Fetch the repository of ``project`` into its mirror and index the new commits."""
    with store.session() as session:
        connection = get_connection(session, project)
        connection_id = connection.id
    return fetch_connection(
        store,
        settings,
        connection_id,
        vault=vault,
        on_progress=on_progress,
        on_lock_wait=on_lock_wait,
    )


def fetch_connection(
    store: Store,
    settings: Settings,
    connection_id: str,
    *,
    vault: Vault | None = None,
    on_progress: ProgressCallback | None = None,
    on_lock_wait: Callable[[], None] | None = None,
) -> FetchResult:
    """:func:`fetch_project` for a connection id (what a job queue holds)."""
    attempted_at = utcnow()
    started = time.monotonic()
    try:
        plan = _plan(store, settings, connection_id, vault or load_vault(settings))
        result = _run(store, settings, plan, attempted_at, started, on_progress, on_lock_wait)
    except RepolinkError as exc:
        with store.session() as session:
            record_failure(
                session,
                connection_id,
                attempted_at=attempted_at,
                code=exc.code,
                message=exc.message,
                hint=exc.hint,
            )
        log.info("fetch of connection %s failed: %s", connection_id, exc.code)
        raise
    finished_at = utcnow()
    with store.session() as session:
        record_success(session, connection_id, attempted_at=attempted_at, finished_at=finished_at)
        mark_used(session, plan.key_record_id, finished_at)
    return result


def _plan(store: Store, settings: Settings, connection_id: str, vault: Vault) -> _Plan:
    with store.session() as session:
        connection = session.get(RepositoryConnection, connection_id)
        if connection is None:
            raise NotFound(
                "connection_not_found",
                f"there is no repository connection {connection_id}",
                "it was removed; connect the project again",
            )
        url = parse_connection_url(connection.url)
        try:
            key = load_private_key(session, vault, connection.deploy_key_id)
        except KeyFormatError as exc:
            raise invalid_private_key(exc) from None
        host, port = url.host_port
        owner = session.get(Project, connection.project_id)
        return _Plan(
            project=owner.slug if owner is not None else connection.project_id,
            connection_id=connection.id,
            key_record_id=connection.deploy_key_id,
            url=url,
            key=key,
            known_hosts=hostkeys.known_hosts_text(session, [url]),
            trusted=hostkeys.trusted_keys(session, host, port),
        )


def _run(
    store: Store,
    settings: Settings,
    plan: _Plan,
    attempted_at: datetime,
    started: float,
    on_progress: ProgressCallback | None,
    on_lock_wait: Callable[[], None] | None,
) -> FetchResult:
    path = mirror.mirror_path(settings, plan.connection_id)
    local = mirror.local_env(settings)
    with mirror.locked(path, timeout=2 * settings.git_timeout, on_wait=on_lock_wait) as lock:
        repaired = mirror.prepare(path, lock, env=local)
        skipped = _update_mirror(settings, plan, path, local, on_progress)

        def indexed(count: int) -> None:
            if on_progress is not None:
                on_progress(FetchProgress(INDEXING, done=count))

        index = index_mirror(
            store,
            plan.connection_id,
            path,
            env=local,
            timeout=settings.git_timeout,
            on_progress=indexed,
        )
    log.info(
        "fetched %s (%s): %s, %d new commits",
        plan.project,
        plan.url.canonical,
        "nothing changed, fetch skipped" if skipped else "fetched",
        index.new_commits,
    )
    return FetchResult(
        project=plan.project,
        connection_id=plan.connection_id,
        skipped=skipped,
        new_commits=index.new_commits,
        removed_commits=index.removed_commits,
        refs=index.refs,
        waited_for_lock=lock.waited,
        repaired=tuple(repaired),
        attempted_at=attempted_at,
        duration=time.monotonic() - started,
    )


def _update_mirror(
    settings: Settings,
    plan: _Plan,
    path: Path,
    local: Mapping[str, str],
    on_progress: ProgressCallback | None,
) -> bool:
    """Fetch into the mirror unless its refs already equal the remote's; True when skipped."""
    host, port = plan.url.host_port
    with gitcli.private_key_file(plan.key.to_openssh()) as key_path:
        run_dir = key_path.parent
        known_hosts = run_dir / KNOWN_HOSTS_NAME
        _write_private(known_hosts, plan.known_hosts)
        ssh_argv = gitcli.ssh_command(
            key_path=key_path,
            known_hosts_path=known_hosts,
            connect_timeout=settings.ssh_connect_timeout,
            control_path=control_path(
                settings,
                host=host,
                port=port,
                key_fingerprint=plan.key.public_key.sha256_fingerprint,
                known_hosts=plan.known_hosts,
            ),
        )
        ssh_argv += hostkeys.host_key_ssh_options()
        env = gitcli.hardened_env(run_dir, extra={"GIT_SSH_COMMAND": shlex.join(ssh_argv)})

        def failed(run: gitcli.CompletedRun, what: str) -> RepolinkError:
            return diagnose(
                run,
                what=what,
                url=plan.url,
                public_key=plan.key.public_key,
                trusted=plan.trusted,
                secrets_paths=[run_dir],
            )

        remote = _ls_remote(settings, plan.url, env, failed)
        mirrored = mirror.read_refs(path, env=local)
        if remote == _targets(mirrored):
            return True
        with mirror.fetching(path):
            _fetch(settings, plan.url, path, env, failed, on_progress)
        return False


def _ls_remote(
    settings: Settings,
    url: SSHURL,
    env: Mapping[str, str],
    failed: Callable[[gitcli.CompletedRun, str], RepolinkError],
) -> dict[str, str]:
    run = _git(
        gitcli.git_argv("ls-remote", "--heads", "--tags", "--refs", "--", url.git_url),
        env=env,
        timeout=settings.git_timeout,
    )
    if not run.ok:
        raise failed(run, "listing the remote refs")
    refs: dict[str, str] = {}
    for line in run.stdout.decode("utf-8", "surrogateescape").splitlines():
        target, _, name = line.partition("\t")
        if name.startswith(("refs/heads/", "refs/tags/")):
            refs[name] = target
    return refs


def _fetch(
    settings: Settings,
    url: SSHURL,
    path: Path,
    env: Mapping[str, str],
    failed: Callable[[gitcli.CompletedRun, str], RepolinkError],
    on_progress: ProgressCallback | None,
) -> None:
    def progress_line(line: str) -> None:
        if on_progress is None:
            return
        progress = parse_progress_line(line)
        if progress is not None:
            on_progress(progress)

    argv = gitcli.git_argv(
        "fetch",
        "--prune",
        "--progress",
        "--no-write-fetch-head",
        "--no-auto-maintenance",
        "--no-recurse-submodules",
        "--",
        url.git_url,
        *REFSPECS,
        git_dir=path,
    )
    run = _git(argv, env=env, timeout=settings.git_timeout, on_stderr_line=progress_line)
    if not run.ok:
        raise failed(run, "fetching")


def _git(
    argv: list[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    on_stderr_line: Callable[[str], None] | None = None,
) -> gitcli.CompletedRun:
    try:
        return gitcli.run(argv, env=env, timeout=timeout, on_stderr_line=on_stderr_line)
    except GitError as exc:  # git or ssh missing, or not startable
        raise FetchError("git_failed", exc.message, exc.hint) from None


def _targets(refs: Mapping[str, MirrorRef]) -> dict[str, str]:
    return {name: ref.target for name, ref in refs.items()}


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
