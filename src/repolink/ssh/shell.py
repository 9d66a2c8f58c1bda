"""OpenSSH mode: the host's keys and commands served by the system's ``sshd``.

``sshd`` asks ``repolink host authorized-keys %u %t %k`` for every key a client offers; for a
known key the answer is one ``authorized_keys`` line whose forced command is
``repolink host shell key-<kind>-<id>``. That command gets the client's command in
``SSH_ORIGINAL_COMMAND``, applies exactly the parsing and authorization of the embedded
server, and runs git. ``restrict`` already refuses ptys and every kind of forwarding.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from repolink.errors import KeyFormatError, RepolinkError, Unauthorized, ValidationError
from repolink.host.commands import (
    GitCommand,
    accepted_git_protocol,
    parse_git_command,
    refusal_line,
)
from repolink.host.events import RefUpdate
from repolink.host.info import Grant, KeyHandle, KeyKind, RepositoryInfo
from repolink.host.repo_storage import RepositoryStorage, git_service_argv, ref_updates
from repolink.host.service import HostService
from repolink.keys.blob import inspect_blob
from repolink.keys.fingerprints import fingerprint_sha256
from repolink.settings import Settings
from repolink.store import Store

log = logging.getLogger(__name__)

DEFAULT_GIT_USER = "git"
EXIT_REFUSED = 1
_KEY_TOKEN = re.compile(r"key-(account|access)-([0-9]{1,18})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_key_token(text: str) -> KeyHandle:
    """``key-access-12`` → the key it names; :class:`ValidationError` ``key_token_invalid``."""
    match = _KEY_TOKEN.fullmatch(text)
    if match is None:
        raise ValidationError(
            "key_token_invalid",
            "the key argument looks like key-access-ID or key-account-ID",
            "this command is run by sshd; let `repolink host authorized-keys` write it",
        )
    kind: KeyKind = "account" if match.group(1) == "account" else "access"
    return KeyHandle(kind, int(match.group(2)))


def default_shell_command(settings: Settings) -> str:
    """How sshd starts repolink: this interpreter, with the data directory spelled out.

    sshd runs forced commands with a minimal environment, so the data directory travels on
    the command line. Other settings (a database URL with a password, say) do not belong in
    a command line: give ``--shell-command`` a wrapper script that sets them instead.
    """
    data_dir = str(settings.resolved_data_dir)
    if _CONTROL.search(data_dir) or _CONTROL.search(sys.executable):
        raise ValidationError(
            "shell_command_invalid",
            "the data directory or the Python path contains control characters",
            "move repolink's data directory to a plain path",
        )
    return shlex.join(["env", f"REPOLINK_DATA_DIR={data_dir}", sys.executable, "-m", "repolink"])


def authorized_keys_line(
    service: HostService,
    *,
    login_user: str,
    key_type: str,
    key_base64: str,
    shell_command: str,
    git_user: str = DEFAULT_GIT_USER,
) -> str | None:
    """The ``authorized_keys`` line for a key sshd asks about, ``None`` for an unknown one."""
    if login_user != git_user:
        return None
    try:
        blob = base64.b64decode(key_base64, validate=True)
        if inspect_blob(blob).key_type != key_type:
            return None
    except (binascii.Error, ValueError, KeyFormatError):
        return None
    handle = service.find_key(fingerprint_sha256(blob))
    if handle is None:
        return None
    command = f"{shell_command} host shell {handle.token}"
    if _CONTROL.search(command):
        raise ValidationError(
            "shell_command_invalid",
            "the shell command contains control characters",
            "give --shell-command a plain path to a wrapper script",
        )
    # In authorized_keys options only \" is an escape; everything else is literal.
    quoted = command.replace('"', '\\"')
    return f'restrict,command="{quoted}" {key_type} {key_base64}'


@dataclass(frozen=True)
class _Authorized:
    command: GitCommand
    grant: Grant


def run_shell(
    settings: Settings, key_token: str, original_command: str | None, environ: Mapping[str, str]
) -> int:
    """Serve one git command for an sshd session; returns the exit status.

    Reads are handed to git with ``exec`` (nothing of repolink stays in between); a push
    runs git as a child, so the refs it changed can be announced to the host's webhooks.
    """
    try:
        handle = parse_key_token(key_token)
        store = Store.open(settings)
    except RepolinkError as exc:
        return _refuse(exc)
    try:
        service = HostService(settings, store)
        try:
            authorized = _authorize(service, handle, original_command)
            service.mark_key_used(authorized.grant)
        except RepolinkError as exc:
            log.info("shell command refused: %s, %s", handle.token, exc.code)
            return _refuse(exc)
        storage = RepositoryStorage(settings)
        path = service.repository_path(authorized.grant.repository)
        env = storage.git_env(git_protocol=accepted_git_protocol(environ.get("GIT_PROTOCOL")))
        argv = git_service_argv(authorized.command.program, path)
        if authorized.command.verb == "read":
            store.close()
            _exec(argv, env)
        before = storage.read_refs(path)
        status = _run_attached(argv, env)
        if status == 0:
            updates = ref_updates(before, storage.read_refs(path))
            if updates:
                _announce_push(settings, store, authorized.grant.repository, updates)
        return status
    finally:
        store.close()


def _authorize(
    service: HostService, handle: KeyHandle, original_command: str | None
) -> _Authorized:
    # The key may have been removed since sshd asked about it: look it up again.
    fingerprint = service.key_fingerprint(handle)
    if fingerprint is None:
        raise Unauthorized(
            "key_unknown",
            "this key is not registered on this host",
            "ask an admin to add it as an access key or account key",
        )
    command = parse_git_command(original_command)
    return _Authorized(
        command, service.authorize(fingerprint, command.repository_path, command.verb)
    )


def _exec(argv: list[str], env: dict[str, str]) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)  # noqa: S606 - our own argv, no shell involved


def _run_attached(argv: list[str], env: dict[str, str]) -> int:
    # git talks to the client over our own stdin/stdout (sshd's pipes), so it inherits them;
    # runner.run would capture them. No time limit: the client's connection bounds it.
    return subprocess.run(argv, env=env, close_fds=True, check=False).returncode


def _announce_push(
    settings: Settings, store: Store, repository: RepositoryInfo, updates: list[RefUpdate]
) -> None:
    try:
        from repolink.host.webhooks import notify_push_from_shell
    except ImportError:
        return
    try:
        notify_push_from_shell(settings, store, repository, updates)
    except Exception:
        # The push itself succeeded; a failed announcement must not turn it into an error.
        log.exception("announcing the push to %s failed", repository.full_name)


def _refuse(exc: RepolinkError) -> int:
    sys.stderr.write(refusal_line(exc))
    sys.stderr.flush()
    return EXIT_REFUSED
