"""Undoing the paste mistakes that are safe to undo, and naming each one that was undone.

:func:`normalise` is the first step of every parser: it turns raw input into clean text
(one ``\\n`` per line end, no surrounding quotes, whitespace or JSON escapes, no indentation)
and records a human-readable name for each repair, so the user learns what was wrong with
their copy. Repairs that need to know the format (re-wrapping a PEM body, joining a split
public key line, dropping ``authorized_keys`` options) are made by the format parsers, which
name them with the constants below.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from repolink.keys.problems import key_error

log = logging.getLogger(__name__)

REMOVED_INVISIBLE = "removed byte order mark / zero-width characters"
REPLACED_NBSP = "replaced non-breaking spaces"
CONVERTED_CRLF = "converted CRLF line endings"
CONVERTED_CR = "converted CR line endings"
STRIPPED_WHITESPACE = "removed leading/trailing whitespace"
REMOVED_QUOTES = "removed surrounding quotes"
REMOVED_CODE_FENCE = "removed code fence"
UNESCAPED_NEWLINES = "unescaped literal \\n sequences"
REMOVED_INDENTATION = "removed indentation"
REMOVED_TRAILING_SPACES = "removed trailing spaces"
JOINED_LINES = "joined base64 body split across lines"
JOINED_SPACES = "joined base64 body split by spaces"
REWRAPPED_BODY = "re-wrapped base64 body"
ADDED_PADDING = "added missing base64 padding"
STRIPPED_OPTIONS = "stripped authorized_keys options"
FIXED_ARMOR = "repaired -----BEGIN/END----- lines"
IGNORED_SURROUNDING_TEXT = "ignored text around the key"

# The largest real key file (RSA 16384, PEM) is about 13 KiB; anything far larger is not a key.
MAX_INPUT_CHARS = 256 * 1024

_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060]")
_UNICODE_SPACE = re.compile("[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_ESCAPE = re.compile(r"\\(r\\n|[nrt\"/\\])")
_ESCAPED = {"r\\n": "\n", "n": "\n", "r": "\n", "t": "\t", '"': '"', "/": "/", "\\": "\\"}
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "`": "`"}
_FENCE_OPEN = re.compile(r"`{3,}[A-Za-z0-9_+-]*")
_FENCE_CLOSE = re.compile(r"`{3,}")


@dataclass
class Repairs:
    """The names of the repairs made so far, each once, in the order they were made."""

    names: list[str] = field(default_factory=list)

    def note(self, name: str) -> None:
        if name not in self.names:
            self.names.append(name)

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(self.names)


def normalise(raw: str | bytes, repairs: Repairs) -> str:
    """Clean text of ``raw``: lines joined by ``\\n``, no trailing newline; repairs noted."""
    text = _as_text(raw)
    text = _replace(text, _INVISIBLE, "", REMOVED_INVISIBLE, repairs)
    text = _replace(text, _UNICODE_SPACE, " ", REPLACED_NBSP, repairs)
    text = _fix_line_ends(text, repairs)
    # Layers can nest ('"-----BEGIN…\n…"' copied out of a JSON string, then indented):
    # peel until nothing changes, a few rounds at most.
    for _ in range(4):
        before = text
        text = _strip_outer_whitespace(text, repairs)
        text = _strip_code_fence(text, repairs)
        text = _strip_quotes(text, repairs)
        text = _unescape(text, repairs)
        text = _fix_line_ends(text, repairs)
        if text == before:
            break
    return _clean_lines(text, repairs)


def _as_text(raw: str | bytes) -> str:
    if isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
        if len(data) > MAX_INPUT_CHARS:
            raise _too_large(len(data))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise key_error(
                "key_not_a_key",
                "the input is binary data, not the text of a key",
                "give the key file as text (OpenSSH or PEM), e.g. the file ssh-keygen wrote",
            ) from None
    if not isinstance(raw, str):
        raise key_error("key_not_a_key", "the key must be given as text or bytes")
    if len(raw) > MAX_INPUT_CHARS:
        raise _too_large(len(raw))
    return raw


def _too_large(size: int) -> Exception:
    return key_error(
        "key_not_a_key",
        f"the input is {size} characters long, far larger than any SSH key",
        "give one key file, not a bundle or an archive",
    )


def _replace(text: str, pattern: re.Pattern[str], new: str, name: str, repairs: Repairs) -> str:
    fixed, count = pattern.subn(new, text)
    if count:
        repairs.note(name)
    return fixed


def _fix_line_ends(text: str, repairs: Repairs) -> str:
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
        repairs.note(CONVERTED_CRLF)
    if "\r" in text:
        text = text.replace("\r", "\n")
        repairs.note(CONVERTED_CR)
    return text


def _strip_outer_whitespace(text: str, repairs: Repairs) -> str:
    stripped = text.strip()
    leading = text[: len(text) - len(text.lstrip())]
    trailing = text[len(text.rstrip()) :]
    # A file ending in newlines is normal; anything else around the key is a paste artefact.
    if leading or trailing.strip("\n"):
        repairs.note(STRIPPED_WHITESPACE)
    return stripped


def _strip_quotes(text: str, repairs: Repairs) -> str:
    if len(text) >= 2 and not text.strip("`"):
        repairs.note(REMOVED_QUOTES)
        return ""
    if len(text) < 2 or text[0] not in _QUOTES or text[-1] != _QUOTES[text[0]]:
        return text
    width = 1
    if text[0] == "`":
        width = len(text) - len(text.lstrip("`"))
        if width * 2 >= len(text) or len(text) - len(text.rstrip("`")) != width:
            return text
    repairs.note(REMOVED_QUOTES)
    return text[width:-width].strip()


def _strip_code_fence(text: str, repairs: Repairs) -> str:
    lines = text.split("\n")
    if (
        len(lines) >= 3
        and _FENCE_OPEN.fullmatch(lines[0].strip())
        and _FENCE_CLOSE.fullmatch(lines[-1].strip())
    ):
        repairs.note(REMOVED_CODE_FENCE)
        return "\n".join(lines[1:-1]).strip()
    return text


def _unescape(text: str, repairs: Repairs) -> str:
    # Only text holding a literal \n or \r is an escaped string; a lone \" may be an option.
    if "\\n" not in text and "\\r" not in text:
        return text
    repairs.note(UNESCAPED_NEWLINES)
    return _ESCAPE.sub(lambda match: _ESCAPED[match.group(1)], text)


def _clean_lines(text: str, repairs: Repairs) -> str:
    lines = text.split("\n")
    if any(line[:1] in (" ", "\t") and line.strip() for line in lines[1:]):
        repairs.note(REMOVED_INDENTATION)
    if any(line != line.rstrip() for line in lines):
        repairs.note(REMOVED_TRAILING_SPACES)
    return "\n".join(line.strip() for line in lines)
