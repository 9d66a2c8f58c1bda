"""``repolink user …`` and ``repolink token …``: users and their API tokens, on the local data
directory with no token, like a self-hosted forge's admin command (the caller acts as
:data:`~repolink.auth.principal.LOCAL_ADMIN`; the audit log records ``local-admin``).

A password never comes from the command line, where other users see it in the process list
and the shell keeps it in its history: it is read from ``--password-file`` (``-``: stdin), else
asked twice at the terminal, else read from stdin's first line.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from repolink.cli._common import (
    JsonOption,
    console,
    err_console,
    format_when,
    new_table,
    open_app,
    print_json,
    print_table,
)
from repolink.cli.confirm import YesOption, confirm_or_stop
from repolink.errors import ValidationError

if TYPE_CHECKING:
    from repolink.accounts.info import UserInfo
    from repolink.auth.tokens import TokenInfo

user_app = typer.Typer(
    help="Users of the service: create, list, delete, set a password.", no_args_is_help=True
)
token_app = typer.Typer(
    help="API tokens of users: create (shown once), list, revoke.", no_args_is_help=True
)

PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        metavar="FILE|-",
        help="Read the password from this file (- : stdin); else it is asked for.",
    ),
]
# More than any password we accept: a file given by mistake ends in a clear error.
MAX_PASSWORD_FILE_BYTES = 4096
_DURATION = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# -- users ------------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(metavar="NAME")],
    site_admin: Annotated[
        bool, typer.Option("--site-admin", help="A site admin: sees and may do everything.")
    ] = False,
    password_file: PasswordFileOption = None,
    no_password: Annotated[
        bool,
        typer.Option("--no-password", help="No password: the user works with API tokens only."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a user, with a password read from a file, the terminal or stdin."""
    from repolink.auth.principal import LOCAL_ADMIN

    if no_password and password_file is not None:
        raise ValidationError(
            "password_choice_conflict",
            "a user gets a password or none, not both",
            "give --password-file or --no-password",
        )
    password = None if no_password else read_password(password_file, confirm=True)
    with open_app() as application:
        user = application.users.create(
            LOCAL_ADMIN, username, password=password, site_admin=site_admin
        )
    if json_output:
        print_json(user_json(user))
        return
    kind = "site admin" if user.site_admin else "user"
    console.print(f"created {kind} {user.username}", markup=False)


@user_app.command("list")
def user_list(json_output: JsonOption = False) -> None:
    """List the users."""
    with open_app() as application:
        users = application.users.list_users()
    if json_output:
        print_json([user_json(user) for user in users])
        return
    if not users:
        console.print("no users", markup=False)
        return
    table = new_table("username", "site admin", "password", "created")
    for user in users:
        table.add_row(
            user.username,
            "yes" if user.site_admin else "",
            "set" if user.has_password else "none",
            format_when(user.created_at),
        )
    print_table(table)


@user_app.command("delete")
def user_delete(
    username: Annotated[str, typer.Argument(metavar="NAME")], yes: YesOption = False
) -> None:
    """Delete a user: their project memberships go and their tokens are revoked at once."""
    from repolink.auth.principal import LOCAL_ADMIN

    confirm_or_stop(f"delete the user {username!r}, their memberships and tokens", yes=yes)
    with open_app() as application:
        user = application.users.delete(LOCAL_ADMIN, username)
    console.print(f"deleted user {user.username}", markup=False)


@user_app.command("set-password")
def user_set_password(
    username: Annotated[str, typer.Argument(metavar="NAME")],
    password_file: PasswordFileOption = None,
) -> None:
    """Set a user's password, read from a file, the terminal or stdin."""
    from repolink.auth.principal import LOCAL_ADMIN

    with open_app() as application:
        application.users.get(username)  # an unknown user is said before the password is asked
        password = read_password(password_file, confirm=True)
        application.users.set_password(LOCAL_ADMIN, username, password)
    console.print(f"set the password of {username}", markup=False)


# -- tokens -----------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", metavar="NAME", help="The token's owner.")],
    name: Annotated[
        str, typer.Option("--name", metavar="LABEL", help="Who or what uses the token.")
    ],
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            metavar="DURATION",
            help="Lifetime: a number and m, h, d or w (30d, 12h, 2w); default: no expiry.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create an API token for a user and print it — this once only."""
    from repolink.auth.principal import LOCAL_ADMIN

    lifetime = parse_duration(expires_in) if expires_in is not None else None
    with open_app() as application:
        info, token = application.api_tokens.create(LOCAL_ADMIN, user, name, expires_in=lifetime)
    if json_output:
        print_json({**token_json(info, user), "token": token})
        return
    console.print(token, markup=False)
    expiry = f", expires {format_when(info.expires_at)}" if info.expires_at else ""
    err_console.print(
        f"token {info.id} ({info.name}) of {user}{expiry}; it is shown only now — store it "
        "somewhere safe",
        markup=False,
    )


@token_app.command("list")
def token_list(
    user: Annotated[
        str | None, typer.Option("--user", metavar="NAME", help="Only this user's tokens.")
    ] = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List API tokens (never the tokens themselves)."""
    from repolink.auth.principal import LOCAL_ADMIN

    with open_app() as application:
        items = application.api_tokens.list(
            LOCAL_ADMIN, username=user, include_revoked=include_revoked
        )
        owners = {found.id: found.username for found in application.users.list_users()}
    named = [(info, _owner(info, owners)) for info in items]
    if json_output:
        print_json([token_json(info, owner) for info, owner in named])
        return
    if not items:
        console.print("no tokens", markup=False)
        return
    table = new_table("id", "user", "name", "prefix", "created", "expires", "last used", "revoked")
    for info, owner in named:
        table.add_row(
            str(info.id),
            owner or "(site admin token)",
            info.name,
            info.prefix + "…",
            format_when(info.created_at),
            format_when(info.expires_at),
            format_when(info.last_used_at),
            format_when(info.revoked_at),
        )
    print_table(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID")], yes: YesOption = False
) -> None:
    """Revoke an API token; requests using it are refused from now on."""
    from repolink.auth.principal import LOCAL_ADMIN

    confirm_or_stop(f"revoke the token {token_id}", yes=yes)
    with open_app() as application:
        info = application.api_tokens.revoke(LOCAL_ADMIN, token_id)
    console.print(f"revoked token {info.id} ({info.name})", markup=False)


# -- input and output -------------------------------------------------------------------------


def read_password(path: Path | None, *, confirm: bool) -> str:
    """The password from ``path`` (``-``: stdin), else asked at the terminal (twice with
    ``confirm``), else stdin's first line. Never an argument."""
    if path is not None:
        return _password_file(path)
    if sys.stdin.isatty():
        value: str = typer.prompt("password", hide_input=True, confirmation_prompt=confirm)
        return value
    return _first_line(sys.stdin.read(MAX_PASSWORD_FILE_BYTES + 1))


def _password_file(path: Path) -> str:
    if str(path) == "-":
        return _first_line(sys.stdin.read(MAX_PASSWORD_FILE_BYTES + 1))
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PASSWORD_FILE_BYTES + 1)
    except OSError as exc:
        raise ValidationError(
            "password_file_unreadable",
            f"cannot read the password file {path}: {exc.strerror or 'error'}",
            "check the path given to --password-file",
        ) from None
    try:
        return _first_line(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValidationError(
            "password_file_unreadable",
            f"the password file {path} is not UTF-8 text",
            "give --password-file a file holding only the password",
        ) from None


def _first_line(text: str) -> str:
    if len(text) > MAX_PASSWORD_FILE_BYTES:
        raise ValidationError(
            "password_file_too_large",
            f"the password input holds more than {MAX_PASSWORD_FILE_BYTES} bytes",
            "give only the password, on one line",
        )
    # Editors end files with a newline; it is not part of the password.
    return text.split("\n", 1)[0].removesuffix("\r")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` as a timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValidationError(
            "duration_invalid",
            "a duration is a number and a unit: m (minutes), h, d or w (weeks)",
            "give --expires-in like 30d",
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def user_json(user: UserInfo) -> dict[str, Any]:
    return {
        "username": user.username,
        "site_admin": user.site_admin,
        "has_password": user.has_password,
        "created_at": user.created_at.isoformat(),
    }


def token_json(info: TokenInfo, owner: str | None) -> dict[str, Any]:
    return {
        "id": info.id,
        "user": owner,
        "name": info.name,
        "prefix": info.prefix,
        "created_at": _iso(info.created_at),
        "expires_at": _iso(info.expires_at),
        "last_used_at": _iso(info.last_used_at),
        "revoked_at": _iso(info.revoked_at),
    }


def _owner(info: TokenInfo, owners: dict[int, str]) -> str | None:
    if info.user_id is None:
        return None
    return owners.get(info.user_id, "(deleted user)")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
