"""One hardened session with a remote repository: what the fetch and ``repolink doctor`` share.

:func:`open_remote` puts the deploy key into a 0600 file inside a fresh 0700 run directory
(:func:`repolink.git.keyfiles.private_key_file`) beside the run's known_hosts file, builds ssh's
option set (:func:`repolink.git.environment.ssh_command` plus the presented-host-key reporter of
:func:`repolink.knownhosts.host_key_ssh_options`) and the hardened environment carrying it as
``GIT_SSH_COMMAND``, and removes the directory when the block ends, however it ends.

A :class:`Remote` runs processes with that environment, through the runner it was opened with, and
turns any failure into the one error :func:`repolink.git.diagnosis.diagnose` names (stderr scrubbed
of the run directory). With ``share=True`` ssh reuses the connection of earlier runs to the same
host with the same key and trust (:mod:`repolink.git.sharing`); a check that must see the handshake
itself (host key, authentication) passes ``share=False``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from repolink import knownhosts
from repolink.errors import FetchError, GitError, RepolinkError
from repolink.git import keyfiles
from repolink.git.cancel import CANCELLED
from repolink.git.diagnosis import diagnose
from repolink.git.environment import git_argv, hardened_env, ssh_command
from repolink.git.mirrors import LISTED_REF_PREFIXES
from repolink.git.runner import CompletedRun, GitRunner
from repolink.git.sharing import control_path
from repolink.keys import PrivateKey, PublicKey
from repolink.knownhosts import TrustedHostKey
from repolink.knownhosts.hostport import normalize_host
from repolink.settings import Settings
from repolink.urls import SSHURL

log = logging.getLogger(__name__)

KNOWN_HOSTS_NAME = "known_hosts"


@dataclass(frozen=True)
class Remote:
    """A repository reachable with one deploy key, for the lifetime of its run directory.

    ``ssh_argv`` is ssh with every option of architecture.md#security and no destination; ``env`` is
    the complete environment for git or ssh children (``GIT_SSH_COMMAND`` is ``ssh_argv``).
    ``control_path``: the socket of the shared connection, when the connection is shared.
    """

    url: SSHURL
    public_key: PublicKey
    trusted: tuple[TrustedHostKey, ...]
    run_dir: Path
    ssh_argv: tuple[str, ...]
    env: dict[str, str]
    timeout: float
    runner: GitRunner
    control_path: Path | None = None

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        on_stderr_line: Callable[[str], None] | None = None,
    ) -> CompletedRun:
        """``argv`` with this remote's environment and wall-clock limit (default: the
        configured git timeout). A program that cannot start is ``git_failed``."""
        try:
            return self.runner.run(
                argv,
                env=self.env,
                timeout=timeout or self.timeout,
                on_stderr_line=on_stderr_line,
            )
        except GitError as exc:  # git or ssh missing, or not startable; or cancelled
            if exc.code == CANCELLED:
                raise
            raise exc.recast(FetchError, code="git_failed") from None

    def failure(self, run: CompletedRun, what: str) -> RepolinkError:
        """The one error that says why ``run`` failed; ``what`` names the step
        ("fetching", "listing the remote refs" …)."""
        return diagnose(
            run,
            what=what,
            url=self.url,
            public_key=self.public_key,
            trusted=list(self.trusted),
            secrets_paths=[self.run_dir],
        )

    def scrub(self, text: str) -> str:
        """``text`` (a child's stderr) without the run directory or anything key-like."""
        return keyfiles.scrub(text, secrets_paths=[self.run_dir])

    def ls_remote(self) -> dict[str, str]:
        """The remote's branches and tags (``refs/heads/…``, ``refs/tags/…``) and their
        targets, as ``git ls-remote`` lists them; a failure raises its diagnosis."""
        run = self.run(git_argv("ls-remote", "--heads", "--tags", "--refs", "--", self.url.git_url))
        if not run.ok:
            raise self.failure(run, "listing the remote refs")
        refs: dict[str, str] = {}
        for line in run.stdout.decode("utf-8", "surrogateescape").splitlines():
            target, _, name = line.partition("\t")
            if name.startswith(LISTED_REF_PREFIXES):
                refs[name] = target
        return refs


@contextlib.contextmanager
def open_remote(
    settings: Settings,
    url: SSHURL,
    key: PrivateKey,
    *,
    trusted: Sequence[TrustedHostKey],
    runner: GitRunner,
    share: bool = True,
    pinned_address: str | None = None,
) -> Iterator[Remote]:
    """A :class:`Remote` for ``url`` with ``key``, verifying host keys against exactly
    ``trusted`` (:func:`repolink.knownhosts.trusted_keys` of the URL's host), which also names a
    changed key. The key file and the run directory are gone when the block ends.

    ``pinned_address``: ssh connects to this IP address, the one the network policy checked,
    instead of resolving the URL's host again, and still verifies the host key under the
    URL's host name (DESIGN.md §5)."""
    known_hosts = knownhosts.known_hosts_lines(trusted)
    with keyfiles.private_key_file(key.to_openssh()) as key_path:
        run_dir = key_path.parent
        known_hosts_path = run_dir / KNOWN_HOSTS_NAME
        _write_private(known_hosts_path, known_hosts)
        shared = (
            control_path(
                settings,
                url=url,
                key_fingerprint=key.public_key.sha256_fingerprint,
                known_hosts=known_hosts,
                pinned_address=pinned_address,
            )
            if share
            else None
        )
        ssh_argv = ssh_command(
            key_path=key_path,
            known_hosts_path=known_hosts_path,
            connect_timeout=settings.ssh_connect_timeout,
            control_path=shared,
            control_persist=settings.ssh_control_persist,
            pinned_address=pinned_address,
            host_key_alias=(
                None if pinned_address is None else knownhosts.known_hosts_name(*_host_port(url))
            ),
        )
        ssh_argv += knownhosts.host_key_ssh_options()
        yield Remote(
            url=url,
            public_key=key.public_key,
            trusted=tuple(trusted),
            run_dir=run_dir,
            ssh_argv=tuple(ssh_argv),
            env=hardened_env(run_dir, extra={"GIT_SSH_COMMAND": shlex.join(ssh_argv)}),
            timeout=settings.git_timeout,
            runner=runner,
            control_path=shared,
        )


def _host_port(url: SSHURL) -> tuple[str, int]:
    """The URL's host and port as known_hosts stores them (lower-case, IPv6 compressed)."""
    host, port = url.host_port
    return normalize_host(host), port


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
