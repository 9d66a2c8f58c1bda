"""Parsing of the SSH command a git client sends, and of GIT_PROTOCOL."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repolink.errors import RepolinkError, ValidationError
from repolink.host.commands import (
    MAX_COMMAND_LENGTH,
    accepted_git_protocol,
    parse_git_command,
)
from repolink.ssh.refusals import refusal_line


@pytest.mark.parametrize(
    ("text", "program", "verb"),
    [
        ("git-upload-pack 'team/app.git'", "git-upload-pack", "read"),
        ("git-upload-pack team/app.git", "git-upload-pack", "read"),
        ("git-upload-pack '/team/app.git'", "git-upload-pack", "read"),
        ("git-upload-pack '/team/app'", "git-upload-pack", "read"),
        ("git-upload-pack team/app", "git-upload-pack", "read"),
        ("git-upload-archive 'team/app.git'", "git-upload-archive", "read"),
        ("git-receive-pack 'team/app.git'", "git-receive-pack", "write"),
        ("git upload-pack 'team/app.git'", "git-upload-pack", "read"),
        ("git receive-pack '/team/app.git'", "git-receive-pack", "write"),
        ('git-upload-pack "team/app.git"', "git-upload-pack", "read"),
    ],
)
def test_accepted_commands(text: str, program: str, verb: str) -> None:
    command = parse_git_command(text)
    assert command.program == program
    assert command.verb == verb
    assert command.repository_path == "team/app"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "shell_refused"),
        ("", "shell_refused"),
        ("   ", "shell_refused"),
        ("bash", "command_refused"),
        ("ls -la", "command_refused"),
        ("git-upload-packx 'team/app.git'", "command_refused"),
        ("git status", "command_refused"),
        ("/usr/bin/git-upload-pack 'team/app.git'", "command_refused"),
        ("git-upload-pack", "command_arguments"),
        ("git-upload-pack 'team/app.git' 'team/other.git'", "command_arguments"),
        ("git-upload-pack team/app.git; id", "command_arguments"),
        ("git-upload-pack --strict team/app.git", "command_arguments"),
        ("git-upload-pack '--help'", "repository_path_invalid"),
        ("git-upload-pack -", "repository_path_invalid"),
        ("git-upload-pack '../other.git'", "repository_path_invalid"),
        ("git-upload-pack 'team/../app.git'", "repository_path_invalid"),
        ("git-upload-pack 'team/a..b.git'", "repository_path_invalid"),
        ("git-upload-pack 'team/app.git; id'", "repository_path_invalid"),
        ("git-upload-pack '/etc/ssh/sshd_config'", "repository_path_invalid"),
        ("git-upload-pack '/srv/git/team/app.git'", "repository_path_invalid"),
        ("git-upload-pack '//team/app.git'", "repository_path_invalid"),
        ("git-upload-pack 'team/app.git/'", "repository_path_invalid"),
        ("git-upload-pack 'team/app.git.git'", "repository_path_invalid"),
        ("git-upload-pack '~/team/app.git'", "repository_path_invalid"),
        ("git-upload-pack 'Team/App.git'", "repository_path_invalid"),
        ("git-upload-pack 'team/app.git", "command_refused"),
        ("git-upload-pack 'team/app.git'\nid", "command_refused"),
        ("git-upload-pack 'team/app\x00.git'", "command_refused"),
    ],
)
def test_refused_commands(text: str | None, code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_git_command(text)
    assert caught.value.code == code


def test_an_overlong_command_is_refused_before_it_is_parsed() -> None:
    # 240 KB of words took shlex about a second; the cap answers at once, whatever the text.
    padding = " 'a'" * (MAX_COMMAND_LENGTH // 4)
    for text in (f"git-upload-pack 'team/app.git'{padding}", " " * 240_000, "a '" * 80_000):
        started = time.perf_counter()
        with pytest.raises(ValidationError) as caught:
            parse_git_command(text)
        assert caught.value.code == "command_too_long"
        assert time.perf_counter() - started < 0.05
    # Up to the cap, a command is parsed as before.
    longest = "git-upload-pack 'team/app.git'".ljust(MAX_COMMAND_LENGTH)
    assert parse_git_command(longest).repository_path == "team/app"
    with pytest.raises(ValidationError, match="longer than"):
        parse_git_command(longest + " ")


def test_a_path_is_only_ever_a_name_to_look_up() -> None:
    # '/etc/passwd' has the shape of '/workspace/slug': it names repository etc/passwd in the
    # database (which answers "not found"), never a file.
    assert parse_git_command("git-upload-pack '/etc/passwd'").repository_path == "etc/passwd"


def test_refusals_never_echo_the_command() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_git_command("git-upload-pack 'SECRET-MARKER'")
    assert "SECRET-MARKER" not in refusal_line(caught.value)


@given(st.text(max_size=200))
def test_any_text_is_parsed_or_refused_with_a_repolink_error(text: str) -> None:
    try:
        command = parse_git_command(text)
    except RepolinkError:
        return
    # Whatever is accepted names a clean two-part repository path.
    workspace, slug = command.repository_path.split("/")
    assert workspace and slug and ".." not in command.repository_path


@pytest.mark.parametrize("value", ["version=2", "version=1", "version=2:object-format=sha1"])
def test_git_protocol_accepted(value: str) -> None:
    assert accepted_git_protocol(value) == value


@pytest.mark.parametrize(
    "value", [None, "", "version=2;id", "version=2 x", "version=$(id)", "a" * 300, "v=2\n"]
)
def test_git_protocol_refused(value: str | None) -> None:
    assert accepted_git_protocol(value) is None
