"""``repolink additional-keys|key-rules|checkout``: a project's extra keys, the rules that pick
them, and a checkout of one commit with its submodules. A thin adapter.

An additional key's private half is never printed: ``add --generate`` shows the public key and
its fingerprints once, to be added as a read-only access key where it is needed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from repolink.accounts import key_audit
from repolink.auth.principal import LOCAL_ADMIN
from repolink.cli._common import (
    BitsOption,
    JsonOption,
    KeyFileOption,
    KeyTypeOption,
    PassphraseFileOption,
    ProjectArgument,
    check_key_choice,
    console,
    format_when,
    open_app,
    print_json,
    read_private_key,
    single_command_app,
)
from repolink.cli.confirm import YesOption, confirm_or_stop
from repolink.platform.checkout import CheckoutResult
from repolink.platform.connections import parse_connection_url
from repolink.platform.key_rules import DEPLOY_KEY

log = logging.getLogger(__name__)

ADD_INSTRUCTION = (
    "Add this public key as a read-only access key on each repository it should read, then "
    "point a key rule at it: repolink key-rules add {project} ssh://git@HOST/TEAM/ --key {fp}"
)


additional_keys_app = typer.Typer(
    help="A project's additional SSH keys (for private dependencies such as submodules).",
    no_args_is_help=True,
)
key_rules_app = typer.Typer(
    help="A project's key rules: URL prefix → key; the longest matching prefix wins.",
    no_args_is_help=True,
)
checkout_app = single_command_app(
    "Write the tree of one commit into a directory, submodules included."
)


# -- additional keys --------------------------------------------------------------------------


@additional_keys_app.command("add")
def additional_keys_add(
    project: ProjectArgument,
    host: Annotated[
        str,
        typer.Option(
            "--host", metavar="HOST[:PORT]", help="The host the key is for (default: any host)."
        ),
    ] = "",
    generate: Annotated[
        bool, typer.Option("--generate", help="Generate a new key (default ed25519).")
    ] = False,
    key_type: KeyTypeOption = "ed25519",
    bits: BitsOption = None,
    key_path: KeyFileOption = None,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an additional key to PROJECT: generated, or imported from a file."""
    check_key_choice(generate, key_type, key_path, what="key")
    imported = read_private_key(key_path, passphrase_file) if key_path is not None else None
    with open_app() as app:
        info = app.additional_keys.add_key(
            project, imported, hostname=host, key_type=key_type, bits=bits
        )
        key_audit.additional_key_added(app.audit, LOCAL_ADMIN, info)
    if as_json:
        print_json(info.as_dict())
        return
    console.print(
        f"added {info.origin} {info.key_type} additional key to {info.project} "
        f"for {info.hostname or 'any host'}",
        markup=False,
    )
    console.print(info.public_key, markup=False)
    console.print(info.fingerprint_sha256, markup=False)
    console.print(info.fingerprint_md5, markup=False)
    console.print(
        ADD_INSTRUCTION.format(project=info.project, fp=info.fingerprint_sha256), markup=False
    )


@additional_keys_app.command("list")
def additional_keys_list(project: ProjectArgument, as_json: JsonOption = False) -> None:
    """List the additional keys of PROJECT."""
    with open_app() as app:
        keys = app.additional_keys.list_keys(project)
    if as_json:
        print_json([info.as_dict() for info in keys])
        return
    # One line per key, the fingerprint whole and first, ready for `key-rules add … --key`.
    for info in keys:
        console.print(
            f"{info.fingerprint_sha256}  {info.key_type}  {info.hostname or '(any host)'}  "
            f"{info.origin}, created {format_when(info.created_at)}, "
            f"last used {format_when(info.last_used_at)}",
            markup=False,
        )


@additional_keys_app.command("remove")
def additional_keys_remove(
    project: ProjectArgument,
    fingerprint: Annotated[
        str, typer.Argument(metavar="FINGERPRINT", help="SHA256:… or MD5 fingerprint.")
    ],
    yes: YesOption = False,
) -> None:
    """Remove an additional key (refused while key rules point at it)."""
    confirm_or_stop(f"remove the additional key {fingerprint} of {project}", yes=yes)
    with open_app() as app:
        info = app.additional_keys.remove_key(project, fingerprint)
        key_audit.additional_key_removed(app.audit, LOCAL_ADMIN, info)
    console.print(f"removed additional key {info.fingerprint_sha256}", markup=False)


# -- key rules --------------------------------------------------------------------------------


@key_rules_app.command("add")
def key_rules_add(
    project: ProjectArgument,
    prefix: Annotated[
        str,
        typer.Argument(
            metavar="PREFIX", help="URL prefix: ssh://git@host/team/ or a repository's URL."
        ),
    ],
    key: Annotated[
        str,
        typer.Option(
            "--key",
            metavar="FINGERPRINT|deploy",
            help="An additional key's fingerprint, or 'deploy' for the deploy key.",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Point PREFIX at a key; the longest matching prefix wins."""
    with open_app() as app:
        rule = app.key_rules.add_rule(project, prefix, key)
        key_audit.key_rule_added(app.audit, LOCAL_ADMIN, rule)
    if as_json:
        print_json(rule.as_dict())
        return
    console.print(f"key rule {rule.prefix} → {_rule_key(rule.key)}", markup=False)


@key_rules_app.command("list")
def key_rules_list(project: ProjectArgument, as_json: JsonOption = False) -> None:
    """List the key rules of PROJECT, longest prefix (tried first) first."""
    with open_app() as app:
        rules = app.key_rules.list_rules(project)
    if as_json:
        print_json([rule.as_dict() for rule in rules])
        return
    for rule in rules:
        console.print(f"{rule.prefix} → {_rule_key(rule.key)}", markup=False)


@key_rules_app.command("remove")
def key_rules_remove(
    project: ProjectArgument,
    prefix: Annotated[str, typer.Argument(metavar="PREFIX", help="The rule's URL prefix.")],
    yes: YesOption = False,
) -> None:
    """Remove the key rule for PREFIX."""
    confirm_or_stop(f"remove the key rule {prefix} of {project}", yes=yes)
    with open_app() as app:
        rule = app.key_rules.remove_rule(project, prefix)
        key_audit.key_rule_removed(app.audit, LOCAL_ADMIN, rule)
    console.print(f"removed key rule {rule.prefix}", markup=False)


@key_rules_app.command("which")
def key_rules_which(
    project: ProjectArgument,
    url: Annotated[str, typer.Argument(metavar="URL", help="An SSH URL, e.g. a submodule's.")],
    as_json: JsonOption = False,
) -> None:
    """Show which key PROJECT would use for URL, and why."""
    parsed = parse_connection_url(url)
    with open_app() as app:
        chosen = app.key_rules.choose_key(project, parsed)
    if as_json:
        print_json({"url": parsed.canonical, **chosen.as_dict()})
        return
    console.print(f"{parsed.canonical}: {chosen.describe()}", markup=False)


# -- checkout ---------------------------------------------------------------------------------


@checkout_app.callback(invoke_without_command=True)
def checkout_command(
    project: ProjectArgument,
    commit: Annotated[
        str,
        typer.Argument(metavar="COMMIT", help="A commit SHA (or unique prefix), branch or tag."),
    ],
    dest: Annotated[
        Path, typer.Argument(metavar="DEST", help="A directory that does not exist or is empty.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Write the tree of COMMIT into DEST, with submodules fetched over SSH by key rule."""
    with open_app() as app:
        result = app.checkouts.checkout_commit(project, commit, dest)
    if as_json:
        print_json(result.as_dict())
        return
    _print_checkout(result)


def _print_checkout(result: CheckoutResult) -> None:
    console.print(
        f"checked out {result.commit} of {result.project} into {result.dest}", markup=False
    )
    for submodule in result.submodules:
        console.print(
            f"  submodule {submodule.path}: {submodule.url} at {submodule.commit} "
            f"with {submodule.key.describe()}",
            markup=False,
        )


def _rule_key(key: str) -> str:
    return "the deploy key" if key == DEPLOY_KEY else f"additional key {key}"
