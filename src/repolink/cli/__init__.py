"""The ``repolink`` command line: a thin adapter over the library.

:func:`main` is the script's entry point. A command that can be answered without the command
tree is answered first (:mod:`repolink.cli.quick`: a ``repolink fetch P`` that finds nothing
new, in a fraction of the tree's start-up); every other command, and any the quick path cannot
finish, runs through the tree of :mod:`repolink.cli.root`, where errors become one line and an
exit status. Nothing heavy is imported here: this package is imported by every command.
"""

from __future__ import annotations

import sys
from typing import NoReturn


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``repolink`` script."""
    args = sys.argv[1:] if argv is None else argv
    from repolink.cli.quick import answer

    status = answer(args)
    if status is not None:
        sys.exit(status)
    from repolink.cli.root import run

    run(args)
