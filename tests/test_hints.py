"""The fix of an error in the command line's own words, filled from the error's context."""

from __future__ import annotations

import pytest

from repolink import hints
from repolink.errors import Conflict, NotFound


def test_a_cli_hint_is_filled_from_the_errors_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(hints.COMMAND_HINTS, "thing_missing", "run: repolink fetch {project}")
    error = NotFound("thing_missing", "m", "fetch the project again", context={"project": "p1"})
    assert hints.command_hint(error) == "run: repolink fetch p1"
    assert error.one_line(hints.command_hint(error)) == "thing_missing: m — run: repolink fetch p1"


def test_without_the_context_a_template_needs_the_errors_own_hint_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(hints.COMMAND_HINTS, "thing_missing", "run: repolink fetch {project}")
    error = NotFound("thing_missing", "m", "fetch the project again")
    assert hints.command_hint(error) == "fetch the project again"


def test_service_hints_name_no_cli_option() -> None:
    # The project service's own hint, as the HTTP API would show it.
    from repolink.platform.projects import _slug_taken

    error: Conflict = _slug_taken("api")
    assert "--" not in error.hint and "repolink " not in error.hint
    assert "--slug" in hints.command_hint(error)
