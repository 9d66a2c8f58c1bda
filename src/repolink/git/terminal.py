"""Remote text stripped of terminal control sequences.

A remote's stderr (git's ``remote:`` lines, ssh's banner) is text an attacker writes. Printed
as it came, an OSC sequence retitles the terminal or plants a hyperlink, ``ESC [2J`` clears the
screen and colours disguise what follows; stored in a connection's diagnosis, it does so again
at every ``repo show``. :func:`strip_terminal_controls` removes ESC- and C1-introduced
sequences whole and every other control character except newline and tab; a carriage return
(git's progress lines) becomes a newline, so no line can overwrite another.
"""

from __future__ import annotations

import re

_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?              # CSI: colours, cursor moves, clear screen
    | \x9b[0-?]*[ -/]*[@-~]?                # CSI in its one-byte C1 form
    | [\x1b][\]PX^_][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?   # OSC, DCS, SOS, PM, APC
    | [\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?  # their C1 forms
    | \x1b[ -/]*[0-~]?                      # any other escape (reset, charset selection)
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_terminal_controls(text: str) -> str:
    """``text`` without control sequences or control characters; newlines and tabs kept."""
    text = _SEQUENCE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)
