"""One git command on the host, from the client's command text to the push it announces.

The embedded SSH server and OpenSSH mode's forced command are two transports for the same use
case, so both call :class:`GitCommands` and decide nothing themselves:

1. :meth:`GitCommands.authorize` — parse the command, authorize the key for the repository and
   the verb (read/write, re-checked on every command), record the key's use, and hand back
   everything needed to start git: argv and hardened environment.
2. :meth:`GitCommands.refs_before` — for a push, the refs before git runs.
3. the adapter runs git (its own way: asyncssh relay, or exec/attached child of sshd).
4. :meth:`GitCommands.after_push` — for a successful push, the refs that changed, which the
   adapter announces (in-process worker, or a detached deliverer).

Recording the use is bookkeeping: when it fails the command still runs — refusing a key that
was just authorized, because ``last_used`` could not be written, would turn a database hiccup
into an outage for every client. The failure is logged with the repository and the key's
fingerprint (never key material), as one line; the traceback goes to the debug log only, since
in OpenSSH mode warnings reach the client's terminal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from repolink.errors import RepolinkError, Unauthorized
from repolink.host.commands import GitCommand, accepted_git_protocol, parse_git_command
from repolink.host.events import RefUpdate
from repolink.host.info import Grant, KeyHandle
from repolink.host.repo_storage import RepositoryStorage, git_service_argv, ref_updates
from repolink.host.service import HostService
from repolink.store.engine import first_error_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthorizedCommand:
    """A git command the key may run now, and how to run it."""

    command: GitCommand
    grant: Grant
    fingerprint: str
    path: Path
    """The bare repository on disk."""
    argv: tuple[str, ...]
    env: dict[str, str]
    """The hardened environment of :func:`repolink.git.environment.hardened_env`."""

    @property
    def pushing(self) -> bool:
        return self.command.verb == "write"

    def describe(self) -> str:
        """``git-upload-pack on team/app by SHA256:…`` — for log lines."""
        return f"{self.command.program} on {self.grant.repository.full_name} by {self.fingerprint}"


class GitCommands:
    """The host's git-command use case, shared by every SSH transport."""

    def __init__(self, service: HostService, storage: RepositoryStorage) -> None:
        self._service = service
        self._storage = storage

    def authorize(
        self, fingerprint: str, command_text: str | None, *, git_protocol: str | None = None
    ) -> AuthorizedCommand:
        """The command ``command_text`` for the key with this exact SHA256 fingerprint.

        Raises :class:`~repolink.errors.RepolinkError` for a command the host does not run or
        the key may not run; the key's use is recorded otherwise. ``git_protocol`` is the
        client's ``GIT_PROTOCOL``, passed on only when well formed.
        """
        command = parse_git_command(command_text)
        grant = self._service.authorize(fingerprint, command.repository_path, command.verb)
        self._record_use(grant, fingerprint)
        path = self._service.repository_path(grant.repository)
        env = self._storage.git_env(git_protocol=accepted_git_protocol(git_protocol))
        argv = tuple(git_service_argv(command.program, path))
        return AuthorizedCommand(command, grant, fingerprint, path, argv, env)

    def authorize_handle(
        self, handle: KeyHandle, command_text: str | None, *, git_protocol: str | None = None
    ) -> AuthorizedCommand:
        """:meth:`authorize` for a key named by its handle (OpenSSH mode's ``key-access-12``).

        The key may have been removed since sshd looked it up: it is looked up again, and a
        removed key is ``key_unknown`` before its command is even read.
        """
        fingerprint = self._service.key_fingerprint(handle)
        if fingerprint is None:
            raise Unauthorized(
                "key_unknown",
                "this key is not registered on this host",
                "ask an admin to add it as an access key or account key",
            )
        return self.authorize(fingerprint, command_text, git_protocol=git_protocol)

    def refs_before(self, authorized: AuthorizedCommand) -> dict[str, str]:
        """The repository's refs before a push runs; nothing for a read."""
        return self._storage.read_refs(authorized.path) if authorized.pushing else {}

    def after_push(
        self, authorized: AuthorizedCommand, before: dict[str, str], status: int
    ) -> list[RefUpdate]:
        """The refs a finished command changed: what is to be announced (often nothing)."""
        if not authorized.pushing or status != 0:
            return []
        self._storage.pack_refs(authorized.path)
        return ref_updates(before, self._storage.read_refs(authorized.path))

    def _record_use(self, grant: Grant, fingerprint: str) -> None:
        try:
            self._service.mark_key_used(grant)
        except Exception as exc:  # bookkeeping: it never refuses a command the key may run
            log.warning(
                "cannot record the use of %s key %d (%s) on %s: %s",
                grant.key_kind,
                grant.key_id,
                fingerprint,
                grant.repository.full_name,
                _reason(exc),
            )
            log.debug("recording the key's use failed", exc_info=True)


def _reason(exc: Exception) -> str:
    # One line, never a rendering of the SQL statement and its parameters.
    if isinstance(exc, RepolinkError):
        return exc.one_line()
    if isinstance(exc, SQLAlchemyError):
        return first_error_line(exc)
    return type(exc).__name__
