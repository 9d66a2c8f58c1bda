"""What the CLI prints, through its real entry point: values whole at any width (issue 10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repolink.knownhosts import SHIPPED_PINS
from support.clikit import CLI

FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CLI:
    (tmp_path / "home").mkdir()
    return CLI(tmp_path / "data", tmp_path / "home", capsys, monkeypatch, columns=80)


def _pinned_fingerprints(cli: CLI) -> set[str]:
    return {key["fingerprint"] for key in cli.json("hostkeys", "list")}


def test_fingerprints_print_whole_when_piped_at_80_columns(cli: CLI) -> None:
    assert SHIPPED_PINS
    done = cli("hostkeys", "list")
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    # Piped: the table takes its full width, so each fingerprint is whole on its row's line.
    assert set(FINGERPRINT.findall(done.stdout)) == _pinned_fingerprints(cli)


def test_fingerprints_fold_but_are_never_cut_on_an_80_column_terminal(cli: CLI) -> None:
    done = cli("hostkeys", "list", env={"TTY_COMPATIBLE": "1", "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    # The fingerprint column, read down its folded lines, holds every fingerprint whole.
    column = [line.split("│")[3].strip() for line in lines if line.startswith("│")]
    assert set(FINGERPRINT.findall("".join(column).replace("SHA256:", " SHA256:"))) == (
        _pinned_fingerprints(cli)
    )
