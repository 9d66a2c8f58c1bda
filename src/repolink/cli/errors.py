"""The CLI's exit statuses (docs/architecture.md), one table: 2, the input is wrong (bad argument,
no such thing, a clash) — fix the command and run it again; 1, the operation was tried and failed.
The most specific class listed wins. The CLI's words for a fix are :mod:`repolink.hints`.
"""

from __future__ import annotations

from repolink.errors import Conflict, InvalidInput, NotFound, RepolinkError

EXIT_CODES: dict[type[RepolinkError], int] = {
    InvalidInput: 2,
    NotFound: 2,
    Conflict: 2,
    RepolinkError: 1,
}


def exit_code_of(error: RepolinkError) -> int:
    """The exit status for ``error``: that of the nearest class in :data:`EXIT_CODES`."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
