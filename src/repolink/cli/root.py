"""The ``repolink`` command tree (Typer): every command but the ones :mod:`repolink.cli.quick`
answers first, and the one place an error becomes a line on stderr and an exit status.

Every command calls the service layer; this module only turns :class:`RepolinkError` into one
line on stderr and an exit status (2 for bad input), and makes sure no traceback ever reaches
the user.

With ``--json`` on the command line, an error is printed as one JSON document instead of that
line, still on **stderr** (stdout holds only a command's result, so ``repolink … --json | jq``
never reads an error as a result; the exit status says which it was)::

    {"error": {"code": "project_not_found", "message": "…", "hint": "…"}}

the same shape as the ``error`` object of the HTTP API's error body; the exit statuses do not
change. Usage mistakes (``invalid_usage``), an interrupted confirmation (``aborted``) and bugs
(``internal_error``) are printed in this shape too.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import Annotated, NoReturn

import typer

from repolink.cli import coercion
from repolink.cli import help as help_format
from repolink.cli._common import err_console
from repolink.cli.errors import EXIT_INTERRUPTED, EXIT_STATUS_RULE, exit_code_of
from repolink.errors import NotFound, RepolinkError, quotable

log = logging.getLogger(__name__)

help_format.install()
coercion.install()

app = typer.Typer(
    name="repolink",
    help="Private Git repos over SSH deploy keys, and a Git host with per-repository access keys.",
    epilog=EXIT_STATUS_RULE,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Inherited by every subcommand's context, so `-h` works wherever `--help` does.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    """``--version``: the version, and the data directory and host storage this environment
    reads — the first thing to check when a command cannot find what it made earlier."""
    if not value:
        return
    from repolink import __version__
    from repolink.settings import load_settings  # not at import: start-up stays cheap

    err = None
    try:
        settings = load_settings()
        data_dir, storage = str(settings.resolved_data_dir), str(settings.resolved_host_storage)
    except RepolinkError as exc:  # still answer the version; say why the rest is missing
        data_dir, storage, err = "unknown", "unknown", exc
    print(f"repolink {__version__}")
    print(f"data directory: {data_dir}")
    print(f"host storage: {storage}")
    if err is not None:
        raise err
    raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print the version, the data directory and the host storage in use, and exit.",
        ),
    ] = False,
) -> None:
    """Private Git repos over SSH deploy keys, and a Git host with per-repository access keys."""


# Subcommand groups, imported only when used: `repolink host shell`, run by sshd on every
# connection in OpenSSH mode, must not pay for importing the whole product, nor `project list`
# for the host's, nor `--help` for any (issue 10 §2).
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
    "info": "repolink.cli.info:info_app",
    "serve": "repolink.cli.serve:serve_app",
    "worker": "repolink.cli.worker:worker_app",
    "webhooks": "repolink.cli.webhooks:app",
    "user": "repolink.cli.accounts:user_app",
    "token": "repolink.cli.accounts:token_app",
}

# What `repolink --help` lists for each group, without importing it; each is the first
# sentence of the group's own help (tests/cli/test_startup.py keeps them equal).
SUMMARIES: dict[str, str] = {
    "project": "Projects of the platform.",
    "repo": "A project's repository connection.",
    "fetch": "Fetch a project's repository and index its new commits.",
    "commits": "List a project's commits (repolink commits PROJECT …), hide and unhide them.",
    "refs": "List a project's branches and tags with their tips.",
    "doctor": "Check a project's repository connection step by step and name the fix.",
    "additional-keys": (
        "A project's additional SSH keys (for private dependencies such as submodules)."
    ),
    "key-rules": "A project's key rules: URL prefix → key; the longest matching prefix wins.",
    "checkout": "Write the tree of one commit into a directory, submodules included.",
    "keys": (
        "Generate SSH key pairs and inspect keys (repairing common paste mistakes); list and "
        "rotate the platform's keys."
    ),
    "hostkeys": (
        "SSH host keys: shipped pins for bitbucket.org, github.com and gitlab.com, and keys "
        "trusted explicitly for other hosts."
    ),
    "host": "The built-in Git host: repositories over SSH with per-repository access keys.",
    "admin": "Operator tasks: master key rotation, database migrations.",
    "info": "Show the data directory, host storage and database in use, and what they hold.",
    "serve": "Run the service: HTTP API, SSH host and job workers, until SIGINT or SIGTERM.",
    "worker": "Run jobs only (fetches, webhook deliveries) until SIGINT or SIGTERM.",
    "webhooks": "A project's incoming webhooks: receiver URLs, secret, deliveries received.",
    "user": "Users of the service: create, list, delete, set a password.",
    "token": "API tokens of users: create (shown once), list, revoke.",
}

# The stand-ins registered for the root's help, by name, until the real group replaces one.
_listed_only: dict[str, typer.Typer] = {}


def _register_subcommands(argv: list[str]) -> None:
    """The group named on ``argv``, imported; with none named (``--help``, a bare
    ``repolink``, a mistyped name), every group listed by its summary, none imported."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    if first in SUBCOMMANDS:
        _register_group(first)
        return
    registered = {group.name for group in app.registered_groups}
    for name, summary in SUMMARIES.items():
        if name not in registered:
            _listed_only[name] = typer.Typer(help=summary)
            app.add_typer(_listed_only[name], name=name)


def register_every_group() -> None:
    """Every group imported and registered, as a test walking the whole command tree needs."""
    for name in SUBCOMMANDS:
        _register_group(name)


def _register_group(name: str) -> None:
    stand_in = _listed_only.pop(name, None)
    if stand_in is not None:
        app.registered_groups = [
            group for group in app.registered_groups if group.typer_instance is not stand_in
        ]
    elif any(group.name == name for group in app.registered_groups):
        return
    module_name, attribute = SUBCOMMANDS[name].split(":")
    app.add_typer(getattr(importlib.import_module(module_name), attribute), name=name)


def run(args: list[str]) -> NoReturn:
    """``repolink ARGS`` through the command tree; exits with the command's status."""
    as_json = _wants_json(args)
    _register_subcommands(args)
    try:
        # Without standalone mode, click returns the code of a `typer.Exit` instead of raising.
        result = app(args=args, prog_name="repolink", standalone_mode=False)
    except RepolinkError as exc:
        # Imported on failure only: its wording table is not worth the start-up of every command.
        from repolink.cli.info import empty_store_note
        from repolink.hints import command_hint

        hint = command_hint(exc)
        if isinstance(exc, NotFound) and (note := empty_store_note()) is not None:
            exc.message = f"{exc.message} {note}"
        _fail(exc.code, exc.message, hint, exit_code_of(exc), as_json, text=exc.one_line(hint))
    except typer.Abort:
        _fail("aborted", "aborted", "", EXIT_INTERRUPTED, as_json, text="aborted")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # never a traceback on the user's terminal
        if type(exc).__name__ == "NoArgsIsHelpError":
            # `repolink` or a group alone asks for help; Typer has printed it (plain click puts
            # it in the message). Help asked for is not an error: no error line, exit 0.
            if message := str(exc.format_message()).strip():  # type: ignore[attr-defined]
                print(message)
            sys.exit(0)
        if _is_usage_error(exc):
            message, hint = _usage_parts(exc)
            _fail("invalid_usage", message, hint, 2, as_json)
        log.debug("unexpected error", exc_info=True)
        _fail(
            "internal_error",
            f"unexpected {type(exc).__name__}",
            "this is a bug in repolink; please report it with the command you ran",
            1,
            as_json,
        )
    else:
        sys.exit(result if isinstance(result, int) else 0)


def _wants_json(args: list[str]) -> bool:
    """Whether ``--json`` is one of the options (not a value after ``--``)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def _fail(
    code: str, message: str, hint: str, status: int, as_json: bool, *, text: str | None = None
) -> NoReturn:
    """Print an error on stderr — one line, or with ``--json`` the JSON error shape — and exit
    with ``status``. ``text`` is the line when the error words it itself."""
    if as_json:
        document = {"error": {"code": code, "message": message, "hint": hint}}
        err_console.out(json.dumps(document, sort_keys=True), highlight=False)
    else:
        line = text if text is not None else f"{code}: {message}" + (f" — {hint}" if hint else "")
        err_console.print(f"error: {line}", markup=False)
    sys.exit(status)


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors, whichever copy of click the installed Typer uses (some vendor it)."""
    return callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    )


_USAGE_QUOTE_LIMIT = 400


def _usage_parts(exc: Exception) -> tuple[str, str]:
    """The message of a usage error on one line, and the help to read as its fix."""
    message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or "repolink"
    if quotable(message, limit=_USAGE_QUOTE_LIMIT) is None:
        # Click quotes the offending argument; a key pasted onto the command line must not be
        # echoed back (DESIGN §5: never in an error).
        return (
            "the command line is not valid; the text it objects to is not shown, since it "
            "may be key material",
            f"give a key as a file or on stdin, never as an argument; see '{command} --help'",
        )
    return message, f"see '{command} --help'"
