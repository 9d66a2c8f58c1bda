"""The CLI's exit statuses (docs/architecture.md), one rule and one table.

The rule, :data:`EXIT_STATUS_RULE`, is what ``repolink --help`` and the README show. The table,
:data:`EXIT_CODES`, applies it to the error tree: a class says what kind of failure an error is,
so a command never picks its own status. The most specific class listed wins. The CLI's words
for a fix are :mod:`repolink.hints`.
"""

from __future__ import annotations

from repolink.errors import Conflict, InvalidInput, NotFound, RepolinkError

# Statuses the CLI itself decides, outside the error tree.
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a process killed by SIGINT

EXIT_STATUS_RULE = (
    "Exit statuses: 0 done; "
    "2 the input is wrong (usage, key, URL, unknown project, workspace, repository or key, "
    "a confirmation missing) — fix the command and run it again; "
    "1 the operation was tried and failed (network, host key, authentication, a remote or a "
    "host API answered an error); "
    f"{EXIT_INTERRUPTED} interrupted (Ctrl-C)."
)

EXIT_CODES: dict[type[RepolinkError], int] = {
    InvalidInput: 2,
    NotFound: 2,
    Conflict: 2,
    # Everything else — GitError, FetchError, HostAPIError, Unauthorized … — was tried and failed.
    RepolinkError: 1,
}


def exit_code_of(error: RepolinkError) -> int:
    """The exit status for ``error``: that of the nearest class in :data:`EXIT_CODES`."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
