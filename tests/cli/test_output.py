"""What the CLI prints, through its real entry point: values whole at any width (issue 10)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import typer
import typer.main

from repolink import __version__
from repolink.cli import root as cli_root
from repolink.cli.root import register_every_group
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


def _json_error(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.stdout == ""  # stdout holds only results
    document = json.loads(done.stderr)
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message", "hint"}
    error: dict[str, str] = document["error"]
    return error


def test_with_json_an_error_is_the_json_error_shape_on_stderr(cli: CLI) -> None:
    done = cli("commits", "no-such-project", "--json")
    assert done.returncode == 2
    error = _json_error(done)
    assert error["code"] == "project_not_found"
    assert "no-such-project" in error["message"]
    assert error["hint"]  # the CLI's wording of the fix, as the text line shows it
    text = cli("commits", "no-such-project")
    assert text.returncode == 2
    assert text.stderr.strip() == f"error: {error['code']}: {error['message']} — {error['hint']}"


def test_with_json_a_usage_error_is_the_json_error_shape_too(cli: CLI) -> None:
    done = cli("project", "list", "--no-such-option", "--json")
    assert done.returncode == 2
    error = _json_error(done)
    assert error["code"] == "invalid_usage"
    assert "--no-such-option" in error["message"]
    assert error["hint"] == "see 'repolink project list --help'"


@pytest.mark.parametrize("args", [[], ["host"], ["keys"]], ids=["repolink", "host", "keys"])
def test_a_command_alone_prints_its_help_and_exits_0(cli: CLI, args: list[str]) -> None:
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert "Usage: repolink" in done.stdout
    assert done.stderr == ""  # no empty `invalid_usage:` line


def test_version_names_the_version_the_data_directory_and_the_host_storage(cli: CLI) -> None:
    done = cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"repolink {__version__}",
        f"data directory: {cli.data_dir.resolve()}",
        f"host storage: {cli.data_dir.resolve() / 'host' / 'repositories'}",
    ]


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group below ``command`` (a click command of whichever click copy)."""
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*path, name))
    return paths


def test_h_is_help_on_every_command(cli: CLI) -> None:
    register_every_group()
    paths = _command_paths(typer.main.get_command(cli_root.app))
    assert len(paths) > 40
    for path in paths:
        done = cli(*path, "-h")
        assert done.returncode == 0, (path, done.stderr)
        assert f"Usage: {' '.join(('repolink', *path))}" in " ".join(done.stdout.split()), path


def test_a_private_key_given_as_an_argument_is_not_echoed_by_the_usage_error(
    cli: CLI, tmp_path: Path
) -> None:
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    private = key.read_text()
    body = private.splitlines()[1]
    done = cli("project", "list", private)
    assert done.returncode == 2
    assert "invalid_usage" in done.stderr
    assert "PRIVATE KEY" not in done.stderr and body not in done.stderr
    assert "key material" in done.stderr
