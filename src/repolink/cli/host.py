"""``repolink host …``: run the built-in Git host and administer it.

The admin commands work on the local data directory directly, with no token, like the admin
command of a self-hosted forge; a running server sees their changes at once, because it
caches nothing. ``authorized-keys`` and ``shell`` are OpenSSH mode's halves, run by sshd on
every connection, so this module imports only what they need: the SSH server, the HTTP API,
the host keys and the webhook commands are imported by the commands that use them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from repolink import server
from repolink.cli._common import (
    console,
    err_console,
    new_table,
    open_app,
    print_json,
    print_table,
)
from repolink.cli.confirm import YesOption, confirm_or_stop
from repolink.errors import ValidationError
from repolink.host.info import AccessKeyInfo, AccountKeyInfo, RepositoryInfo
from repolink.host.naming import parse_full_name, validate_workspace
from repolink.settings import load_settings
from repolink.ssh.shell import (
    DEFAULT_GIT_USER,
    authorized_keys_line,
    default_shell_command,
    run_shell,
)

if TYPE_CHECKING:
    from typer._click import Command, Context

    from repolink.ssh.server import RunningSSHServer

log = logging.getLogger(__name__)

MAX_KEY_FILE_BYTES = 64 * 1024

# Command groups of `repolink host` defined in repolink.cli.host_hooks (module attribute → name).
_HOOK_GROUPS = {"hook_app": "hook", "token_app": "token"}


class _HostGroup(TyperGroup):
    """``repolink host``, adding the webhook and token groups only when a name it does not
    know yet is asked for (so an unknown name still gets suggestions among all commands), or
    when the commands are listed: they import the webhook sender, which OpenSSH mode's
    commands do not need."""

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands:
            self._add_hook_groups()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Context) -> list[str]:
        self._add_hook_groups()
        return super().list_commands(ctx)

    def _add_hook_groups(self) -> None:
        if all(name in self.commands for name in _HOOK_GROUPS.values()):
            return
        try:
            from repolink.cli import host_hooks
        except ImportError:  # the HTTP/webhook side is optional
            return
        for attribute, name in _HOOK_GROUPS.items():
            group = typer.main.get_command(getattr(host_hooks, attribute))
            group.name = name
            self.add_command(group, name)


app = typer.Typer(
    cls=_HostGroup,
    help="The built-in Git host: repositories over SSH with per-repository access keys.",
    no_args_is_help=True,
    add_completion=False,
)
repo_app = typer.Typer(help="Hosted repositories.", no_args_is_help=True, add_completion=False)
access_key_app = typer.Typer(
    help="Access keys: a key on one repository, read-only unless --write.",
    no_args_is_help=True,
    add_completion=False,
)
account_key_app = typer.Typer(
    help="Account keys: a person's key, reading and pushing every repository of a workspace.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(repo_app, name="repo")
app.add_typer(access_key_app, name="access-key")
app.add_typer(account_key_app, name="account-key")


RepositoryArgument = Annotated[str, typer.Argument(metavar="WS/SLUG", help="The repository.")]
WorkspaceArgument = Annotated[str, typer.Argument(metavar="WS", help="The workspace.")]
KeyFileArgument = Annotated[
    str, typer.Argument(metavar="PATH|-", help="Public key file (.pub), or - for stdin.")
]
KeyRefArgument = Annotated[
    str,
    typer.Argument(
        metavar="KEY", help="The key's id, SHA256 fingerprint (SHA256:…) or MD5 fingerprint."
    ),
]
LabelOption = Annotated[str, typer.Option("--label", help="What the key is for, e.g. 'ci'.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


# -- serve ----------------------------------------------------------------------------------


@app.command()
def serve(
    listen: Annotated[
        str, typer.Option(help="Address of the SSH server, HOST:PORT.")
    ] = server.DEFAULT_SSH_LISTEN,
    http: Annotated[
        str,
        typer.Option(help="Address of the HTTP API, HOST:PORT; 'off' to run SSH only."),
    ] = server.DEFAULT_HTTP_LISTEN,
    ssh_url: Annotated[
        str | None,
        typer.Option(
            help="How clients reach the SSH server, e.g. ssh://git@git.example.com:2222 "
            "(default: from --listen); used in API answers and webhook payloads."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve git over SSH (and the host HTTP API) until SIGINT or SIGTERM."""
    http_address = None if http.strip().lower() == "off" else server.parse_address(http, "--http")
    options = server.ServerOptions(
        ssh_address=server.parse_address(listen, "--listen"),
        http_address=http_address,
        ssh_url=ssh_url,
    )
    server.configure_logging(log_level)
    with open_app() as application:
        server.check_host_storage(application)
        asyncio.run(server.serve(application, options, reporter=_ServeReporter()))


class _ServeReporter:
    """What ``serve`` prints: the addresses it listens on, the host keys, and when it stops."""

    def ssh_started(self, ssh: RunningSSHServer, ssh_url_base: str) -> None:
        address = server.join_address(ssh.host, ssh.port)
        console.print(f"SSH server on {address}  (clone: {ssh_url_base}/WS/SLUG.git)")
        for key in ssh.host_keys:
            console.print(f"  host key {key.key_type} {key.fingerprint_sha256}")

    def http_started(self, url: str) -> None:
        console.print(f"HTTP API on {url}")

    def notice(self, text: str) -> None:
        err_console.print(text, markup=False)

    def stopping(self) -> None:
        console.print("stopping")


# -- host keys ------------------------------------------------------------------------------


@app.command()
def fingerprints(
    listen: Annotated[
        str, typer.Option(help="Address the SSH server listens on, HOST:PORT, as given to serve.")
    ] = server.DEFAULT_SSH_LISTEN,
    host: Annotated[
        str | None,
        typer.Option(help="Host name clients use, when not the --listen address (a DNS name)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The SSH server's host key fingerprints and known_hosts lines (keys created if missing)."""
    from repolink.ssh.server_keys import ensure_host_keys

    listen_host, port = server.parse_address(listen, "--listen")
    # The lines must match what clients type, i.e. the host of the clone URLs serve prints.
    host = host or server.client_host(listen_host)
    keys = ensure_host_keys(load_settings())
    if as_json:
        print_json(
            [
                {
                    "key_type": key.key_type,
                    "fingerprint_sha256": key.fingerprint_sha256,
                    "known_hosts": key.known_hosts_line(host, port),
                }
                for key in keys
            ]
        )
        return
    for key in keys:
        console.print(f"{key.key_type} {key.fingerprint_sha256}", markup=False)
    console.print("\nknown_hosts lines:", markup=False)
    for key in keys:
        console.print(key.known_hosts_line(host, port), markup=False)


# -- repositories ---------------------------------------------------------------------------


@repo_app.command("create")
def repo_create(repository: RepositoryArgument, as_json: JsonOption = False) -> None:
    """Create an empty repository (and its workspace, if new)."""
    name = parse_full_name(repository)
    with open_app() as application:
        info = application.host.create_repository(name.workspace, name.slug)
    if as_json:
        print_json(_as_json(info))
    else:
        console.print(f"created {info.full_name} (clone path {info.ssh_clone_path})", markup=False)


@repo_app.command("list")
def repo_list(workspace: WorkspaceArgument, as_json: JsonOption = False) -> None:
    """The repositories of a workspace."""
    with open_app() as application:
        repositories = application.host.list_repositories(validate_workspace(workspace))
    if as_json:
        print_json([_as_json(info) for info in repositories])
        return
    table = new_table("repository", "clone path", "created", "id")
    for info in repositories:
        table.add_row(info.full_name, info.ssh_clone_path, _time(info.created_on), info.id)
    print_table(table)


@repo_app.command("delete")
def repo_delete(
    repository: RepositoryArgument,
    yes: YesOption = False,
) -> None:
    """Delete a repository, its access keys and hooks, and its data on disk."""
    name = parse_full_name(repository)
    confirm_or_stop(f"delete {name.full_name} and all its data", yes=yes)
    with open_app() as application:
        application.host.delete_repository(name.workspace, name.slug)
    console.print(f"deleted {name.full_name}", markup=False)


# -- access keys ----------------------------------------------------------------------------


@access_key_app.command("add")
def access_key_add(
    repository: RepositoryArgument,
    key_file: KeyFileArgument,
    label: LabelOption,
    write: Annotated[bool, typer.Option("--write", help="Allow pushing too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a public key to one repository (read-only unless --write)."""
    name = parse_full_name(repository)
    key_text = _read_key_text(key_file)
    with open_app() as application:
        info = application.host.add_access_key(
            name.workspace, name.slug, key_text, label=label, writable=write
        )
    if as_json:
        print_json(_as_json(info))
        return
    mode = "read-only" if info.read_only else "read/write"
    console.print(
        f"added access key {info.id} to {info.repository_full_name} ({mode}): "
        f"{info.key_type} {info.fingerprint_sha256}",
        markup=False,
    )


@access_key_app.command("list")
def access_key_list(repository: RepositoryArgument, as_json: JsonOption = False) -> None:
    """The access keys of a repository, with their last use."""
    name = parse_full_name(repository)
    with open_app() as application:
        keys = application.host.list_access_keys(name.workspace, name.slug)
    if as_json:
        print_json([_as_json(info) for info in keys])
        return
    table = new_table("id", "label", "access", "fingerprint", "added", "last used")
    for info in keys:
        table.add_row(
            str(info.id),
            info.label,
            "read" if info.read_only else "read/write",
            info.fingerprint_sha256,
            _time(info.added_on),
            _time(info.last_used),
        )
    print_table(table)


@access_key_app.command("update")
def access_key_update(
    repository: RepositoryArgument,
    key_id: Annotated[int, typer.Argument(metavar="ID")],
    label: Annotated[str | None, typer.Option("--label", help="A new label.")] = None,
    write: Annotated[
        bool | None,
        typer.Option("--write/--read-only", help="Allow pushing, or take it back."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Change an access key's label or write permission."""
    name = parse_full_name(repository)
    with open_app() as application:
        info = application.host.update_access_key(
            name.workspace, name.slug, key_id, label=label, writable=write
        )
    if as_json:
        print_json(_as_json(info))
        return
    mode = "read-only" if info.read_only else "read/write"
    console.print(f"access key {info.id} of {info.repository_full_name}: {info.label!r}, {mode}")


@access_key_app.command("remove")
def access_key_remove(
    repository: RepositoryArgument, key: KeyRefArgument, yes: YesOption = False
) -> None:
    """Remove an access key; its next connection is refused.

    KEY is the key's id (from `access-key list`), its SHA256 fingerprint (SHA256:…, as
    ssh-keygen -l prints it) or its MD5 fingerprint (MD5:aa:bb:… or aa:bb:…).
    """
    name = parse_full_name(repository)
    confirm_or_stop(f"remove the access key {key} of {name.full_name}", yes=yes)
    with open_app() as application:
        info = application.host.remove_access_key(name.workspace, name.slug, key)
    console.print(
        f"removed access key {info.id} ({info.fingerprint_sha256}) from {name.full_name}",
        markup=False,
    )


# -- account keys ---------------------------------------------------------------------------


@account_key_app.command("add")
def account_key_add(
    workspace: WorkspaceArgument,
    key_file: KeyFileArgument,
    label: LabelOption,
    as_json: JsonOption = False,
) -> None:
    """Add a person's key to a workspace: read and push all its repositories."""
    key_text = _read_key_text(key_file)
    with open_app() as application:
        info = application.host.add_account_key(
            validate_workspace(workspace), key_text, label=label
        )
    if as_json:
        print_json(_as_json(info))
        return
    console.print(
        f"added account key {info.id} to {info.workspace}: "
        f"{info.key_type} {info.fingerprint_sha256}",
        markup=False,
    )


@account_key_app.command("list")
def account_key_list(workspace: WorkspaceArgument, as_json: JsonOption = False) -> None:
    """The account keys of a workspace, with their last use."""
    with open_app() as application:
        keys = application.host.list_account_keys(validate_workspace(workspace))
    if as_json:
        print_json([_as_json(info) for info in keys])
        return
    table = new_table("id", "label", "fingerprint", "added", "last used")
    for info in keys:
        table.add_row(
            str(info.id),
            info.label,
            info.fingerprint_sha256,
            _time(info.added_on),
            _time(info.last_used),
        )
    print_table(table)


@account_key_app.command("remove")
def account_key_remove(
    workspace: WorkspaceArgument, key: KeyRefArgument, yes: YesOption = False
) -> None:
    """Remove an account key; its next connection is refused.

    KEY is the key's id (from `account-key list`), its SHA256 fingerprint (SHA256:…, as
    ssh-keygen -l prints it) or its MD5 fingerprint (MD5:aa:bb:… or aa:bb:…).
    """
    confirm_or_stop(f"remove the account key {key} of {workspace}", yes=yes)
    with open_app() as application:
        info = application.host.remove_account_key(validate_workspace(workspace), key)
    console.print(
        f"removed account key {info.id} ({info.fingerprint_sha256}) from {info.workspace}",
        markup=False,
    )


# -- OpenSSH mode ---------------------------------------------------------------------------


@app.command("authorized-keys")
def authorized_keys(
    user: Annotated[str, typer.Argument(help="The login user (sshd's %u).")],
    key_type: Annotated[str, typer.Argument(metavar="KEYTYPE", help="sshd's %t.")],
    key: Annotated[str, typer.Argument(metavar="KEY", help="Base64 key blob (sshd's %k).")],
    git_user: Annotated[
        str, typer.Option(help="The system user git clients log in as.")
    ] = DEFAULT_GIT_USER,
    shell_command: Annotated[
        str | None,
        typer.Option(
            help="Command that runs repolink for the forced command (default: this Python "
            "with REPOLINK_DATA_DIR and REPOLINK_OPENSSH_URL), e.g. a wrapper script setting "
            "more settings."
        ),
    ] = None,
) -> None:
    """For sshd's AuthorizedKeysCommand: a forced-command line for a known key, else nothing."""
    with open_app() as application:
        command = shell_command or default_shell_command(application.settings)
        line = authorized_keys_line(
            application.host,
            login_user=user,
            key_type=key_type,
            key_base64=key,
            shell_command=command,
            git_user=git_user,
        )
    if line is not None:
        print(line)


@app.command()
def shell(
    key: Annotated[
        str, typer.Argument(metavar="KEY-TOKEN", help="key-access-ID or key-account-ID.")
    ],
) -> None:
    """Forced command of OpenSSH mode: serve SSH_ORIGINAL_COMMAND for the key."""
    with open_app() as application:
        status = run_shell(application, key, os.environ.get("SSH_ORIGINAL_COMMAND"), os.environ)
    # sys.exit, not typer.Exit: the entry point runs click with standalone_mode=False, where
    # an Exit's status is returned rather than used, and sshd must see git's status.
    sys.exit(status)


@app.command("run-fetches")
def run_fetches(
    runs: Annotated[list[int], typer.Argument(metavar="RUN", help="Ids of queued fetch runs.")],
) -> None:
    """Carry out these queued fetch runs, retries included, then exit; 1 if one failed.

    OpenSSH mode starts this, detached, after a push that queued the fetches of projects
    connected to the pushed repository; it is safe to run beside a server (a connection is
    never fetched twice at once).
    """
    from repolink.platform.hosted_pushes import CARRY_OUT_TIMEOUT

    with open_app() as application:
        finished = application.fetch_requests.carry_out(runs, timeout=CARRY_OUT_TIMEOUT)
    for info in finished:
        console.print(
            f"fetch run {info.id} of {info.project}: {info.state}, {info.new_commits} new commits",
            markup=False,
        )
    if any(info.state == "failed" for info in finished):
        sys.exit(1)  # as `shell` does: the status must reach whoever started this


# -- helpers --------------------------------------------------------------------------------


def _read_key_text(source: str) -> str:
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_KEY_FILE_BYTES + 1)
        else:
            with Path(source).open("rb") as file:
                data = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ValidationError(
            "key_file_unreadable",
            f"cannot read the key file {source} ({exc.strerror})",
            "give the path of a .pub file, or - to read the key from stdin",
        ) from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValidationError(
            "key_file_too_large",
            "the key file is larger than any public key",
            "give the .pub file of the key pair, not another file",
        )
    return data.decode("utf-8", "replace")


def _as_json(info: RepositoryInfo | AccessKeyInfo | AccountKeyInfo) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in dataclasses.asdict(info).items()
    }


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"
