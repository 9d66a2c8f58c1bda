"""Public keys written as text: an ``authorized_keys`` / ``.pub`` line, or an RFC 4716 block."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from repolink.errors import KeyFormatError
from repolink.keys.b64 import BASE64_TOKEN, decode_base64
from repolink.keys.blob import inspect_blob, is_key_type_word, refuse_type
from repolink.keys.model import PublicKey
from repolink.keys.problems import key_error
from repolink.keys.repair import (
    ADDED_PADDING,
    IGNORED_SURROUNDING_TEXT,
    JOINED_LINES,
    JOINED_SPACES,
    STRIPPED_OPTIONS,
    Repairs,
)

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\S+")
_FIRST_WORD = re.compile(r"(\S+)[ \t]*(.*)")
_HEADER = re.compile(r"([^\s:]{1,64}):[ \t]?(.*)")
# A split key line is rejoined from at most this many pieces; more is not a paste mistake.
_MAX_PIECES = 64


@dataclass(frozen=True)
class KeyLine:
    """A line cut into its parts: ``[options] type rest``."""

    options: str
    key_type: str
    rest: str


def split_key_line(line: str) -> KeyLine | None:
    """The parts of ``line`` if it starts like a key line (with or without options)."""
    first = _FIRST_WORD.fullmatch(line)
    if first is None:
        return None
    if is_key_type_word(first.group(1)):
        return KeyLine("", first.group(1), first.group(2))
    options_end = _options_end(line)
    if options_end is None:
        return None
    after = _FIRST_WORD.fullmatch(line[options_end:].strip())
    if after is None or not is_key_type_word(after.group(1)):
        return None
    return KeyLine(line[:options_end], after.group(1), after.group(2))


def _options_end(line: str) -> int | None:
    """Where the ``authorized_keys`` options end: the first blank outside double quotes.

    This follows OpenSSH's own scan, where ``\\"`` inside quotes is an escaped quote.
    """
    quoted = False
    index = 0
    while index < len(line):
        char = line[index]
        if char in " \t" and not quoted:
            return index
        if char == "\\" and line[index + 1 : index + 2] == '"':
            index += 1
        elif char == '"':
            quoted = not quoted
        index += 1
    return None


def read_key_lines(text: str, repairs: Repairs) -> PublicKey:
    """The one public key in ``authorized_keys``-style text (blank and # lines skipped)."""
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    if not lines:
        raise key_error("key_empty", "the input holds only comment lines, no key")
    starts = [(index, found) for index, line in enumerate(lines) if (found := split_key_line(line))]
    if not starts:
        raise not_a_key_line(text)
    if len(starts) > 1:
        raise key_error("key_multiple_keys")
    index, key_line = starts[0]
    if index:
        repairs.note(IGNORED_SURROUNDING_TEXT)
    refuse_type(key_line.key_type)
    if key_line.options:
        repairs.note(STRIPPED_OPTIONS)
    rest = "\n".join([key_line.rest, *lines[index + 1 :]])
    return _read_body_and_comment(key_line.key_type, rest, repairs)


def _read_body_and_comment(key_type: str, rest: str, repairs: Repairs) -> PublicKey:
    # The blob says how long it is, so take base64 pieces until it is whole: a key line
    # broken by a mail client or a terminal is joined back, and the comment stays apart.
    pieces = list(_TOKEN.finditer(rest))
    body = ""
    first_error: KeyFormatError | None = None
    for used, piece in enumerate(pieces[:_MAX_PIECES], start=1):
        if not BASE64_TOKEN.fullmatch(piece.group()):
            break
        body += piece.group()
        try:
            decoded = decode_base64(body)
            info = inspect_blob(decoded.data)
        except KeyFormatError as exc:
            first_error = first_error or exc
            if exc.code != "key_truncated":
                break
            continue
        if info.key_type != key_type:
            raise key_error(
                "key_type_mismatch",
                f"the line says {key_type} but the key data is {info.key_type}",
            )
        if "\n" in rest[: piece.start()]:
            repairs.note(JOINED_LINES)
        elif used > 1:
            repairs.note(JOINED_SPACES)
        if decoded.padding_added:
            repairs.note(ADDED_PADDING)
        comment_lines = rest[piece.end() :].split("\n")
        comment = " ".join(part.strip() for part in comment_lines if part.strip())
        return PublicKey(info.key_type, decoded.data, comment, info.bits)
    if first_error is not None:
        raise first_error
    raise key_error("key_truncated", "the key line has no key data after the key type")


def not_a_key_line(text: str) -> KeyFormatError:
    """The error for text that holds no key line: what it looks like instead."""
    first_word = text.split(maxsplit=1)[0] if text.split() else ""
    if len(first_word) >= 64 and BASE64_TOKEN.fullmatch(first_word):
        return key_error(
            "key_missing_header",
            "the key data has no key type before it (such as ssh-ed25519)",
            "copy the whole line: 'ssh-ed25519 AAAA… comment'",
        )
    return key_error("key_not_a_key")


def read_rfc4716(inner: str, repairs: Repairs) -> PublicKey:
    """The key in the body of a ``---- BEGIN SSH2 PUBLIC KEY ----`` block (RFC 4716)."""
    lines = inner.strip("\n").split("\n")
    headers: dict[str, str] = {}
    while lines and (header := _HEADER.fullmatch(lines[0])):
        lines.pop(0)
        value = header.group(2)
        while value.endswith("\\") and lines:
            value = value[:-1] + lines.pop(0)
        headers[header.group(1).lower()] = value.strip()
    pieces = "".join(lines).split()
    if not pieces:
        raise key_error("key_truncated", "the key block holds no key data")
    if len(pieces) > 1:
        repairs.note(JOINED_SPACES)
    decoded = decode_base64("".join(pieces))
    if decoded.padding_added:
        repairs.note(ADDED_PADDING)
    info = inspect_blob(decoded.data)
    comment = headers.get("comment", "")
    if len(comment) >= 2 and comment[0] == comment[-1] == '"':
        comment = comment[1:-1]
    comment = " ".join(comment.split())
    return PublicKey(info.key_type, decoded.data, comment, info.bits)
