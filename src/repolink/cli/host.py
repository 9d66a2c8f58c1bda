"""``repolink host …``: run the built-in Git host and administer it.

The admin commands work on the local data directory directly, with no token, like the admin
command of a self-hosted forge; a running server sees their changes at once, because it
caches nothing. ``authorized-keys`` and ``shell`` are OpenSSH mode's halves, run by sshd on
every connection, so this module imports only what they need: the SSH server, the HTTP API,
the host keys and the webhook commands are imported by the commands that use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from repolink.cli._common import console, err_console, open_app, print_json
from repolink.errors import ValidationError
from repolink.host.info import AccessKeyInfo, AccountKeyInfo, RepositoryInfo
from repolink.host.naming import parse_full_name, validate_workspace
from repolink.host.service import HostService
from repolink.settings import Settings, load_settings
from repolink.ssh.shell import (
    DEFAULT_GIT_USER,
    authorized_keys_line,
    default_shell_command,
    run_shell,
)
from repolink.store import Store

if TYPE_CHECKING:
    from typer._click import Command, Context

    from repolink.host.events import RefUpdate
    from repolink.ssh.server import RunningSSHServer

log = logging.getLogger(__name__)

MAX_KEY_FILE_BYTES = 64 * 1024
DEFAULT_SSH_LISTEN = "127.0.0.1:2222"
DEFAULT_HTTP_LISTEN = "127.0.0.1:8081"
HTTP_START_TIMEOUT = 30.0

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
LabelOption = Annotated[str, typer.Option("--label", help="What the key is for, e.g. 'ci'.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


# -- serve ----------------------------------------------------------------------------------


@app.command()
def serve(
    listen: Annotated[
        str, typer.Option(help="Address of the SSH server, HOST:PORT.")
    ] = DEFAULT_SSH_LISTEN,
    http: Annotated[
        str,
        typer.Option(help="Address of the HTTP API, HOST:PORT; 'off' to run SSH only."),
    ] = DEFAULT_HTTP_LISTEN,
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
    settings = load_settings()
    ssh_host, ssh_port = _parse_address(listen, "--listen")
    http_address = None if http.strip().lower() == "off" else _parse_address(http, "--http")
    _configure_logging(log_level)
    asyncio.run(_serve(settings, (ssh_host, ssh_port), http_address, ssh_url))


async def _serve(
    settings: Settings,
    ssh_address: tuple[str, int],
    http_address: tuple[str, int] | None,
    ssh_url: str | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # asyncssh is imported only by the command that needs it: sshd runs authorized-keys and
    # shell on every connection, and they should start fast.
    from repolink.ssh.server import start_ssh_server

    with Store.open(settings) as store:
        service = HostService(settings, store)
        # The clone URL in API answers and webhook payloads names the port really bound (the
        # SSH server may have been asked for port 0), so the worker is made once the server
        # listens. No push can be reported before: nothing is awaited between the server's
        # start and the worker's creation, and a push is reported by this same event loop.
        worker: Any = None

        async def on_push(repository: RepositoryInfo, updates: list[RefUpdate]) -> None:
            if worker is not None:
                await worker.on_push(repository, updates)

        ssh: RunningSSHServer | None = None
        http_task: asyncio.Task[None] | None = None
        http_server: Any = None
        try:
            ssh = await start_ssh_server(
                settings, service, host=ssh_address[0], port=ssh_address[1], on_push=on_push
            )
            ssh_url_base = ssh_url or _default_ssh_url(ssh_address[0], ssh.port)
            worker = _delivery_worker(settings, store, ssh_url_base)
            if worker is not None:
                await worker.start()
            _print_started(ssh, ssh_url_base)
            if http_address is not None:
                http_server = _http_server(settings, store, service, http_address, ssh_url_base)
                if http_server is not None:
                    http_task = asyncio.create_task(http_server.serve())
                    bound = await _http_started(http_server, http_task, http_address)
                    console.print(f"HTTP API on http://{_join(*bound)}/host/api/2.0")
            await _wait_until(stop, http_task)
        finally:
            console.print("stopping")
            if http_server is not None:
                http_server.should_exit = True
            if http_task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await http_task
            if ssh is not None:
                await ssh.close()
            if worker is not None:
                await worker.stop()


async def _wait_until(stop: asyncio.Event, http_task: asyncio.Task[None] | None) -> None:
    """Until a signal arrives, or the HTTP server ends on its own (e.g. its port was taken)."""
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
    if http_task is not None:
        waiters.add(http_task)
    done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        if waiter is not http_task:
            waiter.cancel()
    if http_task is not None and http_task in done and not stop.is_set():
        raise ValidationError(
            "http_server_failed",
            "the HTTP API server stopped (see the log above)",
            "check that the --http address is free, or run with --http off",
        )


async def _http_started(
    server: Any, task: asyncio.Task[None], address: tuple[str, int]
) -> tuple[str, int]:
    """Once uvicorn listens: the address it bound (the real port when asked for port 0)."""
    deadline = asyncio.get_running_loop().time() + HTTP_START_TIMEOUT
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            raise ValidationError(
                "http_server_failed",
                f"the HTTP API could not listen on {_join(*address)}",
                "check that the --http address is free, or run with --http off",
            )
        await asyncio.sleep(0.02)
    with contextlib.suppress(AttributeError, IndexError, OSError):
        return address[0], int(server.servers[0].sockets[0].getsockname()[1])
    return address


def _delivery_worker(settings: Settings, store: Store, ssh_url_base: str) -> Any:
    try:
        from repolink.host.webhooks import DeliveryWorker
    except ImportError:
        return None
    return DeliveryWorker(settings, store, ssh_url_base=ssh_url_base)


def _http_server(
    settings: Settings,
    store: Store,
    service: HostService,
    address: tuple[str, int],
    ssh_url_base: str,
) -> Any:
    try:
        import uvicorn

        from repolink.http.host_api import create_host_api
    except ImportError:
        err_console.print("the host HTTP API is not available; serving SSH only", markup=False)
        return None

    class Server(uvicorn.Server):
        """uvicorn leaves SIGINT/SIGTERM to us: one handler stops SSH and HTTP together."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    api = create_host_api(settings, store, service, ssh_url_base=ssh_url_base)
    config = uvicorn.Config(
        api, host=address[0], port=address[1], log_config=None, access_log=False
    )
    return Server(config)


def _print_started(ssh: RunningSSHServer, ssh_url_base: str) -> None:
    console.print(f"SSH server on {_join(ssh.host, ssh.port)}  (clone: {ssh_url_base}/WS/SLUG.git)")
    for key in ssh.host_keys:
        console.print(f"  host key {key.key_type} {key.fingerprint_sha256}")


def _configure_logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValidationError(
            "log_level_invalid", "unknown log level", "use debug, info, warning or error"
        )
    # The server command is the application: it, and only it, decides where logs go.
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if numeric > logging.DEBUG:
        logging.getLogger("asyncssh").setLevel(logging.WARNING)


def _parse_address(text: str, option: str) -> tuple[str, int]:
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValidationError(
            "listen_address_invalid",
            f"{option} must be HOST:PORT",
            f"for example {option} 127.0.0.1:2222 (port 0 picks a free port)",
        )
    return host, int(port_text)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _default_ssh_url(host: str, port: int) -> str:
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            host = socket.getfqdn()
    address = f"[{host}]" if ":" in host else host
    return f"ssh://git@{address}" + ("" if port == 22 else f":{port}")


# -- host keys ------------------------------------------------------------------------------


@app.command()
def fingerprints(
    host: Annotated[
        str, typer.Option(help="Host name clients use, for known_hosts.")
    ] = "localhost",
    port: Annotated[int, typer.Option(help="Port clients use, for known_hosts.")] = 2222,
    as_json: JsonOption = False,
) -> None:
    """The SSH server's host key fingerprints and known_hosts lines (keys created if missing)."""
    from repolink.ssh.server_keys import ensure_host_keys

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
    table = Table("repository", "clone path", "created", "id")
    for info in repositories:
        table.add_row(info.full_name, info.ssh_clone_path, _time(info.created_on), info.id)
    console.print(table)


@repo_app.command("delete")
def repo_delete(
    repository: RepositoryArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a repository, its access keys and hooks, and its data on disk."""
    name = parse_full_name(repository)
    if not yes:
        typer.confirm(f"Delete {name.full_name} and all its data?", abort=True)
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
    table = Table("id", "label", "access", "fingerprint", "added", "last used")
    for info in keys:
        table.add_row(
            str(info.id),
            info.label,
            "read" if info.read_only else "read/write",
            info.fingerprint_sha256,
            _time(info.added_on),
            _time(info.last_used),
        )
    console.print(table)


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
    repository: RepositoryArgument, key_id: Annotated[int, typer.Argument(metavar="ID")]
) -> None:
    """Remove an access key; its next connection is refused."""
    name = parse_full_name(repository)
    with open_app() as application:
        application.host.remove_access_key(name.workspace, name.slug, key_id)
    console.print(f"removed access key {key_id} from {name.full_name}", markup=False)


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
    table = Table("id", "label", "fingerprint", "added", "last used")
    for info in keys:
        table.add_row(
            str(info.id),
            info.label,
            info.fingerprint_sha256,
            _time(info.added_on),
            _time(info.last_used),
        )
    console.print(table)


@account_key_app.command("remove")
def account_key_remove(
    workspace: WorkspaceArgument, key_id: Annotated[int, typer.Argument(metavar="ID")]
) -> None:
    """Remove an account key; its next connection is refused."""
    with open_app() as application:
        application.host.remove_account_key(validate_workspace(workspace), key_id)
    console.print(f"removed account key {key_id} from {workspace}", markup=False)


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
            "with REPOLINK_DATA_DIR), e.g. a wrapper script setting more settings."
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
