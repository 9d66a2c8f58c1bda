"""OpenSSH mode: the host's keys and commands served by the system's ``sshd``.

``sshd`` asks ``repolink host authorized-keys %u %t %k`` for every key a client offers; for a
known key the answer is one ``authorized_keys`` line whose forced command is
``repolink host shell key-<kind>-<id>``. That command gets the client's command in
``SSH_ORIGINAL_COMMAND`` and serves it through the same use case as the embedded server
(:class:`repolink.host.git_commands.GitCommands`), running git itself. ``restrict`` already
refuses ptys and every kind of forwarding.

After a push, the projects of the same data directory whose connection names the pushed
repository at ``REPOLINK_OPENSSH_URL`` get their fetch queued, and the repository's webhooks a
delivery; so that the push returns at once, procrastinate's workers carry out each on
PostgreSQL, a detached process on SQLite.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import shlex
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from repolink.errors import KeyFormatError, RepolinkError, ValidationError
from repolink.host.events import RefUpdate
from repolink.host.info import KeyHandle, KeyKind, RepositoryInfo
from repolink.host.service import HostService
from repolink.keys.blob import inspect_blob
from repolink.keys.fingerprints import fingerprint_sha256
from repolink.settings import Settings
from repolink.ssh.refusals import refusal_line

if TYPE_CHECKING:
    from repolink.app import Repolink

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
    the command line, and so do the host's storage (``REPOLINK_HOST_STORAGE``, when set) and
    the address clients reach sshd at (``REPOLINK_OPENSSH_URL``, when set: a push queues the
    fetches of the projects connected to it). Other settings (a database URL with a password,
    say) do not belong in a command line: give ``--shell-command`` a wrapper script that sets
    them instead.
    """
    assignments = [f"REPOLINK_DATA_DIR={settings.resolved_data_dir}"]
    if settings.host_storage is not None:
        assignments.append(f"REPOLINK_HOST_STORAGE={settings.resolved_host_storage}")
    if any(_CONTROL.search(text) for text in (*assignments, sys.executable)):
        raise ValidationError(
            "shell_command_invalid",
            "the data directory, the host storage or the Python path contains control "
            "characters",
            "move repolink's data directory and host storage to plain paths",
        )
    if settings.openssh_url is not None:
        # Checked by Settings: an ssh:// URL has no whitespace or control characters.
        assignments.append(f"REPOLINK_OPENSSH_URL={settings.openssh_url}")
    return shlex.join(["env", *assignments, sys.executable, "-m", "repolink"])


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


def run_shell(
    app: Repolink, key_token: str, original_command: str | None, environ: Mapping[str, str]
) -> int:
    """Serve one git command for an sshd session; returns the exit status.

    Reads are handed to git with ``exec`` (nothing of repolink stays in between); a push
    runs git as a child, so the refs it changed can be announced to the host's webhooks.
    """
    try:
        handle = parse_key_token(key_token)
    except RepolinkError as exc:
        return _refuse(exc)
    try:
        commands = app.git_commands  # opens the database: refused, not a crash, if it cannot
        authorized = commands.authorize_handle(
            handle, original_command, git_protocol=environ.get("GIT_PROTOCOL")
        )
    except RepolinkError as exc:
        log.info("shell command refused: %s, %s", handle.token, exc.code)
        return _refuse(exc)
    if not authorized.pushing:
        app.close()  # git replaces this process: nothing may hold the database
        app.runner.replace_process(authorized.argv, env=authorized.env)
    before = commands.refs_before(authorized)
    # git talks to the client over our own stdin/stdout (sshd's pipes), so it inherits them.
    # No time limit: the client's connection bounds it.
    status = app.runner.run_attached(authorized.argv, env=authorized.env)
    updates = commands.after_push(authorized, before, status)
    if updates:
        _announce_push(app, authorized.grant.repository, updates)
    return status


def _announce_push(app: Repolink, repository: RepositoryInfo, updates: list[RefUpdate]) -> None:
    """Tell the platform's projects on this data directory (their fetches queued, no HTTP in
    between) and the repository's webhooks; the push itself succeeded, so a failure of either
    is logged and never turned into an error of the push."""
    _queue_fetches(app, repository)
    try:
        from repolink.host.webhooks import notify_push_from_shell
    except ImportError:
        return
    try:
        notify_push_from_shell(
            app.settings,
            app.store,
            repository,
            updates,
            runner=app.runner,
            ssh_url_base=app.settings.openssh_url,
            dispatch=app.delivery_dispatch,
        )
    except Exception:
        log.exception("announcing the push to %s failed", repository.full_name)


def _queue_fetches(app: Repolink, repository: RepositoryInfo) -> None:
    if app.settings.openssh_url is None:
        return  # which projects name this host is unknown; nothing of the platform is loaded
    try:
        from repolink.platform.hosted_pushes import queue_after_shell_push

        queue_after_shell_push(
            app.settings, app.fetch_requests, repository.full_name, runner=app.runner
        )
    except Exception:
        log.exception("queueing the fetches of the push to %s failed", repository.full_name)


def _refuse(exc: RepolinkError) -> int:
    sys.stderr.write(refusal_line(exc))
    sys.stderr.flush()
    return EXIT_REFUSED
