"""Text from a client, made safe for a log line.

A log line is one record per line: a client's text holding a newline would write a second,
forged line, and a NUL or an escape sequence would reach the file or terminal raw. Control
characters (C0, DEL, C1, the Unicode line and paragraph separators) and the backslash that
introduces an escape are written as Python-style escapes (``\\n``, ``\\x00``), so a record stays
on one line and still shows exactly what was sent.
"""

from __future__ import annotations

import logging
import re

_ESCAPES: dict[int, str] = {
    code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))
}
_ESCAPES.update(
    {
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
        ord("\\"): "\\\\",
        0x2028: "\\u2028",
        0x2029: "\\u2029",
    }
)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escaped(text: object) -> str:
    """``text`` with every control character and backslash escaped: one line, all visible."""
    return str(text).translate(_ESCAPES)


class EscapingFilter(logging.Filter):
    """Escapes a record whose message holds a control character, as a last line of defence
    where the text is formatted by code that is not ours (asyncssh logs a client's command).
    A message without control characters is left as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _CONTROL.search(message):
            record.msg, record.args = escaped(message), None
        return True


_FILTER = EscapingFilter()


def escape_records_of(target: logging.Logger | logging.Handler) -> None:
    """Escape the records logged through ``target`` (once, however often it is called)."""
    if _FILTER not in target.filters:
        target.addFilter(_FILTER)
