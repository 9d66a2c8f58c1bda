"""How the CLI says an error: one exit-status table, hints in the CLI's own words."""

from __future__ import annotations

import pytest

from repolink.cli import errors as cli_errors
from repolink.errors import Conflict, NotFound


def test_a_cli_hint_is_filled_from_the_errors_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli_errors.CLI_HINTS, "thing_missing", "run: repolink fetch {project}")
    error = NotFound("thing_missing", "m", "fetch the project again", context={"project": "p1"})
    assert cli_errors.cli_hint(error) == "run: repolink fetch p1"
    assert error.one_line(cli_errors.cli_hint(error)) == "thing_missing: m — run: repolink fetch p1"


def test_without_the_context_a_template_needs_the_errors_own_hint_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(cli_errors.CLI_HINTS, "thing_missing", "run: repolink fetch {project}")
    error = NotFound("thing_missing", "m", "fetch the project again")
    assert cli_errors.cli_hint(error) == "fetch the project again"


def test_service_hints_name_no_cli_option() -> None:
    # The project service's own hint, as the HTTP API would show it.
    from repolink.platform.projects import _slug_taken

    error: Conflict = _slug_taken("api")
    assert "--" not in error.hint and "repolink " not in error.hint
    assert "--slug" in cli_errors.cli_hint(error)
