"""The ``repolink`` command line: a thin adapter over the library.

Every command calls the service layer; this module only turns :class:`RepolinkError` into one
line on stderr and an exit status (2 for bad input), and makes sure no traceback ever reaches
the user.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from repolink.cli._common import err_console
from repolink.cli.errors import exit_code_of
from repolink.errors import RepolinkError
from repolink.hints import command_hint

log = logging.getLogger(__name__)

app = typer.Typer(
    name="repolink",
    help="Private Git repos over SSH deploy keys, and a Git host with per-repository access keys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


# Subcommand groups, imported only when used: `repolink host shell`, run by sshd on every
# connection in OpenSSH mode, must not pay for importing the whole product.
SUBCOMMANDS: dict[str, str] = {
    "project": "repolink.cli.platform:project_app",
    "repo": "repolink.cli.platform:repo_app",
    "fetch": "repolink.cli.platform:fetch_app",
    "commits": "repolink.cli.platform:commits_app",
    "refs": "repolink.cli.platform:refs_app",
    "doctor": "repolink.cli.doctor:doctor_app",
    "additional-keys": "repolink.cli.platform_keys:additional_keys_app",
    "key-rules": "repolink.cli.platform_keys:key_rules_app",
    "checkout": "repolink.cli.platform_keys:checkout_app",
    "keys": "repolink.cli.keys:app",
    "hostkeys": "repolink.cli.hostkeys:app",
    "host": "repolink.cli.host:app",
    "admin": "repolink.cli.admin:app",
}


def _register_subcommands(argv: list[str]) -> None:
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    wanted = [first] if first in SUBCOMMANDS else list(SUBCOMMANDS)
    registered = {group.name for group in app.registered_groups}
    for name in wanted:
        if name not in registered:
            module_name, attribute = SUBCOMMANDS[name].split(":")
            sub_app = getattr(importlib.import_module(module_name), attribute)
            app.add_typer(sub_app, name=name)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``repolink`` script."""
    args = sys.argv[1:] if argv is None else argv
    _register_subcommands(args)
    try:
        # Without standalone mode, click returns the code of a `typer.Exit` instead of raising.
        result = app(args=args, prog_name="repolink", standalone_mode=False)
    except RepolinkError as exc:
        err_console.print(f"error: {exc.one_line(command_hint(exc))}", markup=False)
        sys.exit(exit_code_of(exc))
    except typer.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # never a traceback on the user's terminal
        if _is_usage_error(exc):
            err_console.print(f"error: {_usage_line(exc)}", markup=False)
            sys.exit(2)
        log.debug("unexpected error", exc_info=True)
        err_console.print(
            f"error: internal_error: unexpected {type(exc).__name__} — this is a bug in "
            "repolink; please report it with the command you ran",
            markup=False,
        )
        sys.exit(1)
    else:
        sys.exit(result if isinstance(result, int) else 0)


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors, whichever copy of click the installed Typer uses (some vendor it)."""
    return callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    )


def _usage_line(exc: Exception) -> str:
    message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or "repolink"
    return f"invalid_usage: {message} — see '{command} --help'"
