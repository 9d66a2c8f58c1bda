"""The CLI's shared output: what it prints is what the data says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repolink.cli._common import console, err_console
from repolink.keys.repair import MAX_INPUT_CHARS
from support.clikit import CLI

# An MD5 fingerprint as `repo connect` and `keys list` print it: ":ab:" and ":cd:" are also
# the names of emoji, which must not replace the hex.
MD5_WITH_EMOJI_NAMES = "MD5:ab:cd:01:b1:53:cd:f7:b6:71:cf:b5:6e:4d:1e:b0:c6"


def test_fingerprints_are_printed_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    console.print(MD5_WITH_EMOJI_NAMES)
    err_console.print(MD5_WITH_EMOJI_NAMES)

    captured = capsys.readouterr()
    assert captured.out == MD5_WITH_EMOJI_NAMES + "\n"
    assert captured.err == MD5_WITH_EMOJI_NAMES + "\n"


def test_a_setting_that_does_not_fit_is_bad_input_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "home").mkdir()
    cli = CLI(tmp_path / "data", tmp_path / "home", capsys, monkeypatch)
    for real_process in (False, True):
        done = cli(
            "project",
            "list",
            env={"REPOLINK_SCOUT_MIN_OBJECTS": "-3"},
            real_process=real_process,
        )
        assert done.returncode == 2, done.stderr
        assert "settings_invalid" in done.stderr and "REPOLINK_SCOUT_MIN_OBJECTS" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("source", ["/dev/zero", "large"])
def test_a_passphrase_file_past_the_cap_is_bad_input_not_a_crash(
    source: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # /dev/zero never ends: read whole, it ended in "internal_error: unexpected MemoryError".
    (tmp_path / "home").mkdir()
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass", "-f", str(key)], check=True)
    if source == "large":
        source = str(tmp_path / "large")
        Path(source).write_bytes(b"p" * (MAX_INPUT_CHARS + 1))
    cli = CLI(tmp_path / "data", tmp_path / "home", capsys, monkeypatch)
    for real_process in (False, True):
        done = cli(
            "keys", "inspect", str(key), "--passphrase-file", source, real_process=real_process
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: passphrase_file_too_large: "), done.stderr
        assert source in done.stderr and "--passphrase-file" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout
