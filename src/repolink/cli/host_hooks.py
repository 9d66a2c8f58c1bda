"""``repolink host hook …`` and ``repolink host token …``: webhooks and admin tokens.

Like every ``repolink host`` command, these work on the local data directory directly (no
token needed) and take effect on a running server at once. A token is printed exactly once,
by ``token create``; a hook's secret is never printed at all.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from repolink.auth.tokens import TokenInfo
from repolink.cli._common import (
    console,
    err_console,
    new_table,
    open_app,
    print_json,
    print_table,
)
from repolink.cli.confirm import YesOption, confirm_or_stop
from repolink.errors import InvalidInput, ValidationError
from repolink.host.hooks import PUSH_EVENT, DeliveryInfo, HookInfo
from repolink.host.naming import parse_full_name

log = logging.getLogger(__name__)

# A secret file holds one line; anything longer than this is not a webhook secret.
MAX_SECRET_FILE_BYTES = 4096

hook_app = typer.Typer(
    help="Webhooks of hosted repositories: a signed repo:push POST after every push.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(
    help="Admin tokens of the host HTTP API (shown once, stored hashed).",
    no_args_is_help=True,
    add_completion=False,
)

RepositoryArgument = Annotated[str, typer.Argument(metavar="WS/SLUG", help="The repository.")]
HookArgument = Annotated[str, typer.Argument(metavar="HOOK_UUID", help="The webhook's uuid.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


# -- hooks ----------------------------------------------------------------------------------


@hook_app.command("add")
def hook_add(
    repository: RepositoryArgument,
    url: Annotated[str, typer.Argument(help="The receiver's http:// or https:// URL.")],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="Sign deliveries with this secret (visible in the process list; "
            "prefer --secret-file).",
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", help="Read the secret from this file ('-': stdin)."),
    ] = None,
    events: Annotated[
        list[str] | None,
        typer.Option("--event", help=f"Event to send (repeatable); default {PUSH_EVENT}."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the hook is for.")] = "",
    json_output: JsonOption = False,
) -> None:
    """Add a webhook: every push to WS/SLUG is POSTed to URL."""
    name = parse_full_name(repository)
    hook_secret = _read_secret(secret, secret_file)
    with open_app() as application:
        hook = application.hooks.add_hook(
            name.workspace,
            name.slug,
            url,
            events=events or [PUSH_EVENT],
            secret=hook_secret,
            description=description,
        )
    if json_output:
        print_json(hook_json(hook))
        return
    signed = "signed with its secret" if hook.secret_set else "unsigned (no secret)"
    console.print(
        f"added webhook {hook.uuid} to {hook.repository_full_name}: {', '.join(hook.events)} "
        f"→ {hook.url}, {signed}",
        markup=False,
    )


@hook_app.command("list")
def hook_list(repository: RepositoryArgument, json_output: JsonOption = False) -> None:
    """List the webhooks of WS/SLUG."""
    name = parse_full_name(repository)
    with open_app() as application:
        items = application.hooks.list_hooks(name.workspace, name.slug)
    if json_output:
        print_json([hook_json(hook) for hook in items])
        return
    if not items:
        console.print(f"{name.full_name} has no webhooks", markup=False)
        return
    # The uuid is what `hook remove` needs: never shortened. More in --json.
    table = new_table("uuid", "url", "events", "state")
    for hook in items:
        state = ("active" if hook.active else "inactive") + (
            ", signed" if hook.secret_set else ", unsigned"
        )
        table.add_row(hook.uuid, hook.url, ", ".join(hook.events), state)
    print_table(table)


@hook_app.command("remove")
def hook_remove(
    repository: RepositoryArgument, hook_uuid: HookArgument, yes: YesOption = False
) -> None:
    """Remove a webhook of WS/SLUG (its pending deliveries are dropped)."""
    name = parse_full_name(repository)
    confirm_or_stop(f"remove the webhook {hook_uuid} of {name.full_name}", yes=yes)
    with open_app() as application:
        application.hooks.remove_hook(name.workspace, name.slug, hook_uuid)
    console.print(f"removed webhook {hook_uuid} from {name.full_name}", markup=False)


@hook_app.command("deliveries")
def hook_deliveries(
    repository: RepositoryArgument, hook_uuid: HookArgument, json_output: JsonOption = False
) -> None:
    """List the latest deliveries of a webhook, newest first."""
    name = parse_full_name(repository)
    with open_app() as application:
        items = application.hooks.list_deliveries(name.workspace, name.slug, hook_uuid)
    if json_output:
        print_json([delivery_json(item) for item in items])
        return
    if not items:
        console.print("no deliveries yet", markup=False)
        return
    table = new_table("id", "event", "status", "attempts", "response", "error", "updated (UTC)")
    for item in items:
        table.add_row(
            str(item.id),
            item.event,
            item.status,
            str(item.attempts),
            "" if item.last_response_code is None else str(item.last_response_code),
            item.last_error or "",
            _time(item.updated_at),
        )
    print_table(table)


@hook_app.command("deliver")
def hook_deliver() -> None:
    """Send every pending delivery now, retrying as usual, until none is left pending.

    OpenSSH mode starts this, detached, after each push; it is safe to run beside a server.
    """
    with open_app() as application:
        counts = asyncio.run(application.delivery_worker().drain())
    console.print(f"delivered {counts.delivered}, failed {counts.failed}", markup=False)


# -- tokens ---------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    label: Annotated[str, typer.Option(help="Who or what uses the token.")] = "admin token",
    json_output: JsonOption = False,
) -> None:
    """Create an admin token for the host API and print it — this once only."""
    from repolink.auth.principal import LOCAL_ADMIN

    with open_app() as application:
        info, token = application.api_tokens.create(LOCAL_ADMIN, None, label)
    if json_output:
        print_json({**token_json(info), "token": token})
        return
    console.print(token, markup=False)
    err_console.print(
        f"admin token {info.id} ({info.label}); it is shown only now — store it somewhere safe",
        markup=False,
    )


@token_app.command("list")
def token_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List admin tokens (never the tokens themselves)."""
    from repolink.auth.principal import LOCAL_ADMIN

    with open_app() as application:
        items = application.api_tokens.list(
            LOCAL_ADMIN, owner_less=True, include_revoked=include_revoked
        )
    if json_output:
        print_json([token_json(info) for info in items])
        return
    if not items:
        console.print("no admin tokens", markup=False)
        return
    table = new_table("id", "label", "created (UTC)", "last used", "revoked")
    for info in items:
        table.add_row(
            str(info.id),
            info.label,
            _time(info.created_at),
            _time(info.last_used_at),
            _time(info.revoked_at),
        )
    print_table(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID")], yes: YesOption = False
) -> None:
    """Revoke an admin token; requests using it are refused from now on."""
    confirm_or_stop(f"revoke the admin token {token_id}", yes=yes)
    from repolink.auth.principal import LOCAL_ADMIN

    with open_app() as application:
        info = application.api_tokens.revoke(LOCAL_ADMIN, token_id)
    console.print(f"revoked admin token {info.id} ({info.label})", markup=False)


# -- output ---------------------------------------------------------------------------------


def hook_json(hook: HookInfo) -> dict[str, Any]:
    return {
        "uuid": hook.uuid,
        "repository": hook.repository_full_name,
        "url": hook.url,
        "description": hook.description,
        "events": list(hook.events),
        "active": hook.active,
        "secret_set": hook.secret_set,
        "created_at": _iso(hook.created_at),
    }


def delivery_json(item: DeliveryInfo) -> dict[str, Any]:
    return {
        "id": item.id,
        "hook_uuid": item.hook_uuid,
        "request_uuid": item.request_uuid,
        "event": item.event,
        "status": item.status,
        "attempts": item.attempts,
        "last_response_code": item.last_response_code,
        "last_error": item.last_error,
        "next_attempt_at": _iso(item.next_attempt_at),
        "created_at": _iso(item.created_at),
        "updated_at": _iso(item.updated_at),
    }


def token_json(info: TokenInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "label": info.label,
        "created_at": _iso(info.created_at),
        "last_used_at": _iso(info.last_used_at),
        "revoked_at": _iso(info.revoked_at),
    }


def _read_secret(secret: str | None, secret_file: Path | None) -> str | None:
    if secret is not None and secret_file is not None:
        raise ValidationError(
            "hook_secret_conflict",
            "--secret and --secret-file were both given",
            "give the secret one way only; --secret-file keeps it out of the process list",
        )
    if secret_file is None:
        return secret
    try:
        if str(secret_file) == "-":
            data = sys.stdin.buffer.read(MAX_SECRET_FILE_BYTES + 1)
        else:
            with secret_file.open("rb") as handle:
                data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(
            "hook_secret_file_unreadable",
            f"cannot read the secret file {secret_file} ({exc.strerror})",
            "check the path and its permissions",
        ) from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ValidationError(
            "hook_secret_invalid",
            "the secret file is too large to hold a webhook secret",
            "put only the secret in the file, e.g. openssl rand -hex 32 > FILE",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(
            "hook_secret_invalid",
            "the secret file is not UTF-8 text",
            "put only the secret in the file, e.g. openssl rand -hex 32 > FILE",
        ) from None
    return text.rstrip("\r\n")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""
