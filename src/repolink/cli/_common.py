"""What every CLI command shares: settings, consoles, JSON output."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from repolink.cli.jsonout import print_json as print_json
from repolink.errors import ValidationError

if TYPE_CHECKING:
    from rich.table import Table

    from repolink.app import Repolink
    from repolink.keys import PrivateKey

# Everything printed holds user data (commit subjects, labels, URLs, remote text), so Rich's
# markup is off here, once, for every line and every table cell: with it on, a subject
# "[docs] update readme" printed as " update readme" and the "[hidden]" marker vanished. Style,
# where wanted, is given explicitly with `rich.text.Text`. No emoji codes either: fingerprints
# hold ":ab:" and ":cd:", which Rich would draw as emoji.
console = Console(markup=False, highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True, emoji=False)


@contextmanager
def open_app() -> Iterator[Repolink]:
    """The application of one command, built from the environment, closed when it ends."""
    from repolink.app import Repolink  # not at import: OpenSSH-mode commands start fast
    from repolink.settings import load_settings

    with Repolink(load_settings()) as application:
        yield application


def new_table(*headers: str) -> Table:
    """A table of user data whose cells are never cut short: a fingerprint, URL or label too
    long for its column folds onto the next line instead of ending in "…" (at 80 columns every
    table printed ``SHA256:d…``). Print it with :func:`print_table`."""
    from rich.table import Table  # not at import: OpenSSH-mode commands start fast

    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def print_table(table: Table) -> None:
    """Print ``table`` on stdout: folded to the terminal's width on a terminal; at its full
    width when piped or redirected, so each row stays on one line for grep and cut (Rich
    would otherwise assume 80 columns and fold every long value)."""
    if not console.is_terminal:
        from rich.measure import Measurement

        unbounded = console.options.update_width(1_000_000)
        table.width = Measurement.get(console, unbounded, table).maximum
    console.print(table)


class SingleCommandGroup(TyperGroup):
    """A group that is one command (every top-level name is an app for ``add_typer``):
    options may follow the arguments, and the usage line offers no subcommand."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return [piece for piece in pieces if piece != getattr(self, "subcommand_metavar", None)]


def single_command_app(help: str) -> typer.Typer:
    """A Typer app holding one command, registered by its callback (``repolink fetch P``)."""
    return typer.Typer(
        cls=SingleCommandGroup, help=help, context_settings={"allow_interspersed_args": True}
    )


# Arguments and options of the platform's commands.
ProjectArgument = Annotated[str, typer.Argument(metavar="PROJECT", help="The project's slug.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

# The options of every command that takes a generated or an imported private key.
KeyTypeOption = Annotated[
    str, typer.Option("--type", help="With --generate: ed25519 (default), rsa or ecdsa.")
]
BitsOption = Annotated[
    int | None, typer.Option(help="With --generate: RSA 2048/3072/4096, ECDSA 256/384/521.")
]
KeyFileOption = Annotated[
    str | None,
    typer.Option("--key", metavar="PATH|-", help="Import this private key file (- : stdin)."),
]
PassphraseFileOption = Annotated[
    Path | None, typer.Option(help="File holding the passphrase of the imported key.")
]


def check_key_choice(generate: bool, key_type: str, key_path: str | None, *, what: str) -> None:
    """Exactly one of --generate and --key, and a key type repolink generates; ``what`` names
    the key in the fix ("deploy key", "key")."""
    from repolink.keys import KEY_TYPES

    if generate == (key_path is not None):
        raise ValidationError(
            "key_choice_required",
            "choose exactly one of --generate and --key",
            f"use --generate for a new {what}, or --key FILE to import one",
        )
    if key_type not in KEY_TYPES:
        raise ValidationError(
            "key_type_invalid",
            "the key type must be ed25519, rsa or ecdsa",
            "use --type ed25519 (recommended), rsa or ecdsa",
        )


def read_private_key(key_path: str, passphrase_file: Path | None) -> PrivateKey:
    """The private key of --key (a file, or ``-`` for stdin), unlocked with --passphrase-file.

    Read by the same parser as ``keys inspect``, so one mistake has one code in every command
    (a cut-off key is ``key_missing_footer`` here too, not a broad ``invalid_private_key``),
    and the repairs made to the input are reported on stderr as ``inspect`` reports them.
    """
    from repolink.keys import parse_private_key

    passphrase = read_passphrase_file(passphrase_file) if passphrase_file is not None else None
    parsed = parse_private_key(read_key_input(key_path), passphrase)
    if parsed.repairs:
        # stderr: stdout may be the JSON document of --json.
        err_console.print(f"repaired: {'; '.join(parsed.repairs)}", markup=False)
    return parsed.key


def read_key_input(path: str) -> bytes:
    """A key from a file, or from stdin for ``-``; read no further than the parsers accept."""
    from repolink.keys.repair import MAX_INPUT_CHARS  # repolink.keys imports cryptography

    limit = MAX_INPUT_CHARS + 1  # one more than accepted, so the parser can say "too large"
    if path == "-":
        return sys.stdin.buffer.read(limit)
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except FileNotFoundError:
        raise ValidationError(
            "key_file_not_found", f"{path} does not exist", "check the path of the key file"
        ) from None
    except OSError as exc:
        raise ValidationError(
            "key_file_unreadable",
            f"cannot read the key file {path}: {os.strerror(exc.errno) if exc.errno else 'error'}",
            "check the path of the key file",
        ) from None


def read_passphrase_file(path: Path) -> bytes:
    """The passphrase in ``path``, read no further than a key is: ``/dev/zero`` or a log file
    given by mistake must end in a clear error, not in a process that runs out of memory."""
    from repolink.keys.repair import MAX_INPUT_CHARS  # repolink.keys imports cryptography

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_INPUT_CHARS + 1)
    except OSError as exc:
        raise ValidationError(
            "passphrase_file_unreadable",
            f"cannot read the passphrase file {path}: "
            f"{os.strerror(exc.errno) if exc.errno else 'error'}",
            "check the path given to --passphrase-file",
        ) from None
    if len(raw) > MAX_INPUT_CHARS:
        raise ValidationError(
            "passphrase_file_too_large",
            f"the passphrase file {path} holds more than {MAX_INPUT_CHARS // 1024} KB",
            "give --passphrase-file a file holding only the passphrase",
        )
    # Editors end files with a newline; it is not part of the passphrase.
    return raw.removesuffix(b"\n").removesuffix(b"\r")


def format_when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"
