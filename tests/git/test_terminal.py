"""Remote text loses its terminal control sequences before it is stored or printed."""

from __future__ import annotations

import pytest

from repolink.errors import FetchError, GitError
from repolink.git.diagnosis import diagnose
from repolink.git.runner import CompletedRun, HardenedRunner
from repolink.git.terminal import strip_terminal_controls
from repolink.keys import generate_key
from repolink.urls import parse_ssh_url

# What a hostile server wrote on its stderr: retitle the terminal, clear the screen, home the
# cursor, a hyperlink, colours, a bell, a line that overwrites the one before it.
HOSTILE = (
    "remote: \x1b]0;owned\x07\x1b[2J\x1b[H\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\n"
    "fatal: \x1b[31;1mbad\x1b[0m object\x07\x00 here\r\x1b[Kfatal: all is well\n"
)


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("plain\ttext\nline two\n", "plain\ttext\nline two\n"),
        ("ünïcode", "ünïcode"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[2J\x1b[3;4Hx", "x"),
        ("\x1b]0;title\x07after", "after"),
        ("\x1b]2;title\x1b\\after", "after"),
        ("\x1bPdcs body\x1b\\after", "after"),
        ("\x1bcreset", "reset"),
        ("\x1b(Bcharset", "charset"),
        ("\x9b31mc1 csi", "c1 csi"),
        ("\x9d0;title\x9cc1 osc", "c1 osc"),
        ("progress 10%\rprogress 20%\r\n", "progress 10%\nprogress 20%\n"),
        ("nul\x00 bell\x07 del\x7f bs\x08", "nul bell del bs"),
        ("cut off \x1b", "cut off "),
        ("cut off \x1b]0;title", "cut off "),
    ],
)
def test_strip_terminal_controls(text: str, stripped: str) -> None:
    assert strip_terminal_controls(text) == stripped


def _hostile_run(env: dict[str, str]) -> CompletedRun:
    printed = HardenedRunner().run(
        ["python3", "-c", f"import sys; sys.stderr.write({HOSTILE!r}); sys.exit(128)"],
        env=env,
        timeout=30,
    )
    assert "\x1b]0;owned" in printed.stderr  # the process really wrote the sequences
    return printed


def _assert_clean(message: str) -> None:
    assert not any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in message), message


def test_a_failed_run_never_carries_the_remotes_control_sequences(env: dict[str, str]) -> None:
    with pytest.raises(GitError) as caught:
        _hostile_run(env).check("git fetch")
    _assert_clean(caught.value.message)
    assert caught.value.message.endswith("fatal: all is well")


def test_git_failed_diagnosis_never_carries_the_remotes_control_sequences(
    env: dict[str, str],
) -> None:
    error = diagnose(
        _hostile_run(env),
        what="fetching",
        url=parse_ssh_url("git@example.com:team/app.git"),
        public_key=generate_key().public_key,
        trusted=[],
        secrets_paths=[],
    )
    assert isinstance(error, FetchError) and error.code == "git_failed"
    _assert_clean(error.message)
    assert "fatal: bad object here" in error.message
