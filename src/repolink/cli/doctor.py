"""``repolink doctor PROJECT``: check a project's connection step by step.

Prints a ✓/✗ checklist as the checks complete, and after a failure the fix of the failing
check; ``--json`` prints the report instead. Exit status 0 when every check passes, 1 when
one fails, 2 for bad input (no such project or connection).
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.text import Text

from repolink.cli._common import console, open_app, print_json, single_command_app
from repolink.hints import command_wording
from repolink.platform.doctor import FAILED, PASSED, TITLES, Check, DoctorReport

log = logging.getLogger(__name__)

_MARKS = {PASSED: ("✓", "green"), FAILED: ("✗", "bold red")}
_SKIPPED_MARK = ("–", "dim")
_TITLE_WIDTH = max(len(title) for title in TITLES.values()) + 2


doctor_app = single_command_app(
    "Check a project's repository connection step by step and name the fix."
)


@doctor_app.callback(invoke_without_command=True)
def doctor_command(
    project: Annotated[str, typer.Argument(metavar="PROJECT", help="The project's slug.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Check URL, DNS, TCP, SSH host key, authentication, repository access and refs."""
    with open_app() as app:
        if as_json:
            report = app.doctor.check_project(project)
            print_json(report.as_dict())
        else:
            report = app.doctor.check_project(project, on_check=_Checklist(project))
            _print_verdict(report)
    if not report.ok:
        raise typer.Exit(code=1)


class _Checklist:
    """Prints each check as it completes, under a heading printed with the first one (so an
    unknown project prints nothing but its error)."""

    def __init__(self, project: str) -> None:
        self._project = project
        self._started = False

    def __call__(self, check: Check) -> None:
        if not self._started:
            self._started = True
            console.print(f"checking the repository connection of {self._project}", markup=False)
        mark, style = _MARKS.get(check.status, _SKIPPED_MARK)
        detail = f"{check.code}: {check.detail}" if check.code else check.detail
        title = (f"{check.title:<{_TITLE_WIDTH}}", "bold")
        console.print(Text.assemble((mark, style), " ", title, detail))


def _print_verdict(report: DoctorReport) -> None:
    failure = report.failure
    if failure is None:
        console.print(
            Text.assemble(
                ("all checks passed", "green"), f"; fetch with: repolink fetch {report.project}"
            )
        )
        return
    fix = failure.hint or ""
    if failure.code is not None:
        worded = command_wording(failure.code, failure.reason, failure.context)
        if worded is not None:
            fix = f"{worded} — {failure.note}" if failure.note else worded
    console.print(Text.assemble(("fix", "bold"), f" ({failure.title}): {fix}"))
