"""The one line a refused SSH command gets on stderr."""

from __future__ import annotations

from repolink.errors import PermissionDenied, ValidationError
from repolink.ssh.refusals import refusal_line


def test_refusal_line_is_one_line() -> None:
    error = ValidationError("x", "first\nsecond", "a\nhint")
    line = refusal_line(error)
    assert line.endswith("\n") and line.count("\n") == 1
    assert line.startswith("repolink: first second — a hint")


def test_refusal_line_words_the_hint_as_the_cli_does() -> None:
    error = PermissionDenied(
        "read_only_key",
        "this access key is read-only",
        "ask an admin of team/app to make access key 3 writable",
        context={"repository": "team/app", "key_id": "3"},
    )
    assert error.hint.count("repolink ") == 0  # the service names no command
    assert (
        refusal_line(error)
        .rstrip()
        .endswith("(repolink host access-key update team/app 3 --write)")
    )
