"""Commands answered before the command tree is built (issue 10 §2).

``repolink fetch P`` that finds nothing new is the command a script or a person runs most
often, and the tree's start-up (Typer, Rich, every option's parser) cost more than the no-op
itself. Here it is recognised on the bare argument list and answered by
:meth:`repolink.platform.refresh.RefreshService.unchanged` — the same check, the same record
and the same words as through the tree. Whatever it cannot answer (any other command, an
option it does not know, something changed, anything failing) returns ``None`` having printed
and written nothing, and the tree then runs the command from the start and reports as ever.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_JSON = "--json"


def answer(args: list[str]) -> int | None:
    """The exit status of ``args`` answered here, or ``None``: run them through the tree."""
    project, as_json = _fetch_arguments(args)
    if project is None:
        return None
    try:
        from repolink.app import Repolink
        from repolink.settings import load_settings

        with Repolink(load_settings()) as app:
            result = app.refreshes.unchanged(project)
    except KeyboardInterrupt:  # as through the tree: no traceback, the shell's status
        from repolink.cli.errors import EXIT_INTERRUPTED

        return EXIT_INTERRUPTED
    except Exception:  # the tree runs the command again and reports what goes wrong
        log.debug("the quick fetch of %s gave way to the full one", project, exc_info=True)
        return None
    if result is None:
        return None
    if as_json:
        from repolink.cli.jsonout import print_json

        print_json(result.as_dict())
    else:
        print("\n".join(result.summary_lines()))
    return 0


def _fetch_arguments(args: list[str]) -> tuple[str | None, bool]:
    """The project of ``fetch PROJECT [--json]`` (in any order), else ``None``."""
    if not args or args[0] != "fetch":
        return None, False
    rest = args[1:]
    as_json = _JSON in rest
    operands = [arg for arg in rest if arg != _JSON]
    if len(operands) != 1 or operands[0].startswith("-") or rest.count(_JSON) > 1:
        return None, False
    return operands[0], as_json
