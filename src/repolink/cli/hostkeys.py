"""``repolink hostkeys``: scan, trust, list and remove SSH host keys.

A thin adapter over :mod:`repolink.platform.known_hosts`. ``scan`` trusts nothing; ``trust``
stores the one key whose fingerprint was given, and only if the server presents it.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from repolink.auth.principal import LOCAL_ADMIN
from repolink.cli._common import console, new_table, open_app, print_json, print_table
from repolink.cli.confirm import YesOption, confirm_or_stop
from repolink.errors import ValidationError
from repolink.knownhosts import TrustedHostKey, display_name, parse_host_port

log = logging.getLogger(__name__)

app = typer.Typer(
    help="SSH host keys: shipped pins for bitbucket.org, github.com and gitlab.com, and keys "
    "trusted explicitly for other hosts.",
    no_args_is_help=True,
    add_completion=False,
)

_HOST_HELP = "HOST or HOST:PORT; IPv6 as [2001:db8::1] or [2001:db8::1]:2222."


@app.command("scan")
def scan_command(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help=_HOST_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show the host keys a server presents (type, SHA256 fingerprint, key). Trusts nothing."""
    host, port = parse_host_port(target)
    with open_app() as app:
        keys = app.known_hosts.scan(host, port)
    if as_json:
        print_json([key.as_dict() for key in keys])
        return
    name = display_name(host, port)
    console.print(f"{name} presents {len(keys)} host key(s); none is trusted by this scan:")
    for key in keys:
        console.print(f"  {key.key_type}  {key.fingerprint}", markup=False)
        console.print(f"    {key.public_line}", markup=False, soft_wrap=True)
    console.print(
        "Check a fingerprint with the server's admin or the service's documentation, then run: "
        f"repolink hostkeys trust {name} --fingerprint SHA256:…",
        markup=False,
    )


@app.command("trust")
def trust_command(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help=_HOST_HELP)],
    fingerprint: Annotated[
        str | None,
        typer.Option("--fingerprint", help="SHA256:… of the key to trust, checked out of band."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Trust a key of a host with shipped pins; the pins then stop being trusted.",
        ),
    ] = False,
) -> None:
    """Trust the host key with this fingerprint, if the server presents it."""
    host, port = parse_host_port(target)
    name = display_name(host, port)
    if fingerprint is None:
        raise ValidationError(
            "fingerprint_required",
            "no fingerprint given; repolink trusts a host key only by its fingerprint",
            f"run `repolink hostkeys scan {name}`, check a fingerprint out of band, then add "
            "--fingerprint SHA256:…",
        )
    with open_app() as app:
        outcome = app.known_hosts.trust(host, port, fingerprint, force=force)
        if outcome.created:
            from repolink.accounts import key_audit  # only when trust changed: scan stays quick

            key_audit.host_key_trusted(app.audit, LOCAL_ADMIN, outcome.key)
    key = outcome.key
    verb = "trusted" if outcome.created else "already trusted"
    console.print(f"{verb}: {name} {key.key_type} {key.fingerprint}", markup=False)
    if key.overrides_pin:
        console.print(f"the shipped host keys of {name} are no longer trusted", markup=False)


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List trusted host keys; shipped pins are marked."""
    with open_app() as app:
        keys = app.known_hosts.list_known_hosts()
    if as_json:
        print_json([key.as_dict() for key in keys])
        return
    table = new_table("host", "type", "fingerprint", "source", "since")
    for key in keys:
        table.add_row(key.name, key.key_type, key.fingerprint, _source(key), _since(key))
    print_table(table)


@app.command("remove")
def remove_command(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help=_HOST_HELP)],
    fingerprint: Annotated[
        str | None,
        typer.Option("--fingerprint", help="Remove only this key (default: all stored keys)."),
    ] = None,
    yes: YesOption = False,
) -> None:
    """Remove stored host keys of a host (shipped pins cannot be removed)."""
    host, port = parse_host_port(target)
    which = f"the host key {fingerprint}" if fingerprint else "every stored host key"
    confirm_or_stop(f"remove {which} of {display_name(host, port)}", yes=yes)
    with open_app() as app:
        removed = app.known_hosts.remove(host, port, fingerprint)
        from repolink.accounts import key_audit  # here: scan and list stay quick to start

        for key in removed:
            key_audit.host_key_removed(app.audit, LOCAL_ADMIN, key)
    for key in removed:
        console.print(f"removed: {key.name} {key.key_type} {key.fingerprint}", markup=False)


def _source(key: TrustedHostKey) -> str:
    if key.shipped:
        return "shipped (overridden)" if key.overridden else "shipped"
    return "stored (overrides pins)" if key.overrides_pin else "stored"


def _since(key: TrustedHostKey) -> str:
    return key.trusted_at.strftime("%Y-%m-%d %H:%M") if key.trusted_at else "-"
