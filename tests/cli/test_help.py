"""Every command's --help, as a user reads it: no ``<bool>`` beside a flag, no type noise
beside an argument, no sentence of a docstring broken in the middle of a line (issue 10
§1.17)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from repolink.cli.help import reflow
from support.clikit import CLI, command_tree

TYPE_NOISE = re.compile(r"<(?:bool|str|int|float|path|Path|list\[\w+\])>")


@pytest.fixture
def wide_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CLI:
    # So wide that a paragraph is wrapped only where its text breaks it.
    return CLI(tmp_path / "data", tmp_path / "home", capsys, monkeypatch, columns=4000)


def test_every_help_reads_without_type_noise_or_broken_sentences(wide_cli: CLI) -> None:
    pages = [((), None), *command_tree()]
    assert len(pages) > 50
    problems = []
    for path, command in pages:
        shown = wide_cli(*path, "--help")
        assert shown.returncode == 0, (path, shown.stderr)
        if noise := TYPE_NOISE.findall(shown.stdout):
            problems.append(f"{' '.join(path)}: {noise}")
        lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
        for paragraph in _paragraphs(command.help if command is not None else None):
            if not any(paragraph in line for line in lines):
                problems.append(f"{' '.join(path)}: broken: {paragraph!r}")
    assert problems == []


def _paragraphs(help_text: str | None) -> list[str]:
    """Each paragraph of a help text as one line (a list item on its own), whitespace
    normalised: what a wide terminal must show on one line."""
    text = inspect.cleandoc(help_text or "").partition("\f")[0]
    return [
        " ".join(line.split())
        for paragraph in text.split("\n\n")
        if not paragraph.startswith("\b")
        for line in reflow(paragraph).splitlines()
        if line.strip()
    ]


def test_reflow_joins_a_paragraph_but_keeps_list_items_and_verbatim_text() -> None:
    assert reflow("KEY is the id, as\n    ssh-keygen prints it.") == (
        "KEY is the id, as ssh-keygen prints it."
    )
    assert reflow("Steps:\n- one\n  continued\n- two") == "Steps:\n- one continued\n- two"
    assert reflow("\bkept\nas written") == "\bkept\nas written"
