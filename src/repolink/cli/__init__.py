"""The ``repolink`` command line: a thin adapter over the library.

Every command calls the service layer; this module only turns :class:`RepolinkError` into one
line on stderr and an exit status (2 for bad input), and makes sure no traceback ever reaches
the user.
"""

from __future__ import annotations

import logging
import sys

import click
import typer

from repolink.cli._common import err_console
from repolink.errors import RepolinkError

log = logging.getLogger(__name__)

app = typer.Typer(
    name="repolink",
    help="Private Git repos over SSH deploy keys, and a Git host with per-repository access keys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_subcommands() -> None:
    # Imported here so that `import repolink.cli` builds nothing until main() runs.
    from repolink.cli import admin, keys

    app.add_typer(keys.app, name="keys")
    app.add_typer(admin.app, name="admin")
    try:
        from repolink.cli import host
    except ImportError:  # the host adapter is optional until its issue lands
        return
    app.add_typer(host.app, name="host")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``repolink`` script."""
    _register_subcommands()
    try:
        app(args=argv, standalone_mode=False)
    except RepolinkError as exc:
        err_console.print(f"error: {exc.one_line()}", markup=False)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # never a traceback on the user's terminal
        log.debug("unexpected error", exc_info=True)
        err_console.print(
            f"error: internal_error: unexpected {type(exc).__name__} — this is a bug in "
            "repolink; please report it with the command you ran",
            markup=False,
        )
        sys.exit(1)
    else:
        sys.exit(0)
