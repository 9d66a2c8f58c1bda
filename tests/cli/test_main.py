"""The CLI's outer shell: one line on stderr, the right exit status, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from repolink import cli
from repolink.cli import root
from repolink.errors import ValidationError


def _run_main(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    code = exited.value.code
    assert isinstance(code, int)
    return code


@pytest.fixture
def failing_command() -> object:
    """Register a throwaway command on the real app and remove it afterwards."""

    def boom(kind: str) -> None:
        if kind == "ours":
            raise ValidationError("thing_invalid", "the thing is invalid", "give a valid thing")
        raise RuntimeError("secret detail that must not be printed")

    root.app.command("boom-for-test")(boom)
    yield boom
    root.app.registered_commands = [
        c for c in root.app.registered_commands if c.name != "boom-for-test"
    ]


@pytest.mark.usefixtures("failing_command")
def test_our_error_is_one_line_with_code_and_hint_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run_main(["boom-for-test", "ours"]) == 2
    err = capsys.readouterr().err
    assert err == "error: thing_invalid: the thing is invalid — give a valid thing\n"


@pytest.mark.usefixtures("failing_command")
def test_unexpected_error_prints_no_traceback_and_no_detail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run_main(["boom-for-test", "other"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "secret detail" not in err
    assert err.startswith("error: internal_error: unexpected RuntimeError")


def test_unknown_command_is_bad_input_exit_2_without_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "repolink", "no-such-command"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "no-such-command" in done.stderr


def test_typer_exit_code_reaches_the_shell() -> None:
    import typer

    def leave() -> None:
        raise typer.Exit(3)

    root.app.command("exit-for-test")(leave)
    try:
        assert _run_main(["exit-for-test"]) == 3
    finally:
        root.app.registered_commands = [
            c for c in root.app.registered_commands if c.name != "exit-for-test"
        ]


def test_the_exit_status_rule_is_in_the_root_help_and_the_readme(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One rule, written once, shown where a user looks for it (issue 10 §1.2)."""
    from pathlib import Path

    from repolink.cli.errors import EXIT_STATUS_RULE

    assert _run_main(["--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert " ".join(EXIT_STATUS_RULE.split()) in shown
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Exit statuses", 1)[1].split("\n#", 1)[0]
    for status in ("`0`", "`1`", "`2`", "`130`"):
        assert status in section
