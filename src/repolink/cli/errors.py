"""How the CLI says an error: its exit status and, where the CLI can be more exact, its hint.

Exit statuses (DESIGN.md §4), one table: 2, the input is wrong (bad argument, no such thing, a
clash) — fix the command and run it again; 1, the operation was tried and failed. The most
specific class listed wins.

Hints: a service's hint is adapter-neutral ("fetch the project again"). Where the CLI can name
the exact command, :data:`CLI_HINTS` says it, filled from the error's ``context``; an error
without the context a template needs keeps its own hint.
"""

from __future__ import annotations

from repolink.errors import Conflict, InvalidInput, NotFound, RepolinkError

EXIT_CODES: dict[type[RepolinkError], int] = {
    InvalidInput: 2,
    NotFound: 2,
    Conflict: 2,
    RepolinkError: 1,
}


# error code → the CLI's hint, a template over the error's context.
CLI_HINTS: dict[str, str] = {
    "project_exists": "choose another name or give another --slug",
    # the built-in host
    "read_only_key": "ask an admin of {repository} to make access key {key_id} writable "
    "(repolink host access-key update {repository} {key_id} --write)",
    "repository_not_found": "list the repositories with: repolink host repo list {workspace}",
    "label_invalid": "name the machine or purpose, e.g. --label 'ci runner'",
    "workspace_not_found": "a workspace is created with its first repository: "
    "repolink host repo create WS/SLUG",
    "hook_not_found": "list its webhooks with: repolink host hook list {repository}",
}


def cli_hint(error: RepolinkError) -> str:
    """The hint the CLI prints for ``error``."""
    template = CLI_HINTS.get(error.code)
    if template is None:
        return error.hint
    try:
        return template.format_map(error.context)
    except (KeyError, ValueError):
        return error.hint


def exit_code_of(error: RepolinkError) -> int:
    """The exit status for ``error``: that of the nearest class in :data:`EXIT_CODES`."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
