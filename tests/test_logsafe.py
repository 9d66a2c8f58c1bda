"""Client text in log lines: one record, one line, every character visible."""

from __future__ import annotations

import logging

import pytest

from repolink.logsafe import EscapingFilter, escaped


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("team/app", "team/app"),
        ("ünïcode label", "ünïcode label"),
        ("a\nb", "a\\nb"),
        ("a\r\nb\tc", "a\\r\\nb\\tc"),
        ("nul\x00", "nul\\x00"),
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("sep\u2028\u2029", "sep\\u2028\\u2029"),
        ("looks\\nescaped", "looks\\\\nescaped"),
    ],
)
def test_escaped(text: str, logged: str) -> None:
    assert escaped(text) == logged


def test_the_filter_escapes_a_record_formatted_elsewhere() -> None:
    record = logging.LogRecord("x", logging.INFO, "f", 1, "Command: %s", ("a\nb\x00",), None)
    assert EscapingFilter().filter(record)
    assert record.getMessage() == "Command: a\\nb\\x00"
    plain = logging.LogRecord("x", logging.INFO, "f", 1, "path %s", ("C:\\dir",), None)
    EscapingFilter().filter(plain)
    assert plain.getMessage() == "path C:\\dir"
