"""Finding the ``-----BEGIN …-----`` / ``-----END …-----`` block of a key and reading its body.

One pattern covers PEM (``BEGIN RSA PRIVATE KEY`` armour), OpenSSH
(``BEGIN OPENSSH PRIVATE KEY``) and RFC 4716 (``---- BEGIN SSH2 PUBLIC KEY ----``)
armor. The pattern tolerates a lost dash or a stray space and does not need the armor lines
on lines of their own, so a key squeezed onto one line by a web form is still found.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from repolink.keys.b64 import BASE64_TOKEN, decode_base64
from repolink.keys.problems import key_error
from repolink.keys.repair import (
    ADDED_PADDING,
    FIXED_ARMOR,
    IGNORED_SURROUNDING_TEXT,
    REWRAPPED_BODY,
    Repairs,
)

log = logging.getLogger(__name__)

OPENSSH_PRIVATE = "OPENSSH PRIVATE KEY"
RSA_PRIVATE = "RSA PRIVATE KEY"
EC_PRIVATE = "EC PRIVATE KEY"
PKCS8_PRIVATE = "PRIVATE KEY"
PKCS8_ENCRYPTED = "ENCRYPTED PRIVATE KEY"
DSA_PRIVATE = "DSA PRIVATE KEY"
SSH2_PRIVATE = "SSH2 ENCRYPTED PRIVATE KEY"
SSH2_PUBLIC = "SSH2 PUBLIC KEY"
PEM_PUBLIC = frozenset({"PUBLIC KEY", "RSA PUBLIC KEY"})
PEM_PRIVATE = frozenset({RSA_PRIVATE, EC_PRIVATE, PKCS8_PRIVATE, PKCS8_ENCRYPTED})

_ARMOR = re.compile(r"-{3,6} ?(BEGIN|END) ([A-Z0-9]+(?: [A-Z0-9]+){0,5}) ?-{3,6}")
# Canonical body lines are at most this wide (OpenSSL writes 64, OpenSSH 70, RFC 4716 ≤ 72).
_MAX_NEAT_WIDTH = 76
_MAX_BLOCKS = 16


def is_private_label(label: str) -> bool:
    return label.endswith("PRIVATE KEY")


def is_public_label(label: str) -> bool:
    return label == SSH2_PUBLIC or label in PEM_PUBLIC


@dataclass(frozen=True)
class Block:
    """One armored block; ``has_begin``/``has_end`` say which armor lines were found."""

    label: str
    inner: str
    has_begin: bool
    has_end: bool


@dataclass(frozen=True)
class Body:
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""


def has_armor(text: str) -> bool:
    return _ARMOR.search(text) is not None


def find_block(text: str, repairs: Repairs, wanted: str) -> Block | None:
    """The block to read from ``text``: the first whose label is of the ``wanted`` kind
    ("private" or "public"), else the first one; ``None`` when there is no armor at all."""
    matches = []
    for match in _ARMOR.finditer(text):
        matches.append(match)
        if len(matches) > _MAX_BLOCKS * 2:
            break
    if not matches:
        return None
    begins = [m for m in matches if m.group(1) == "BEGIN"]
    if not begins:
        end = matches[0]
        return Block(end.group(2), text[: end.start()], has_begin=False, has_end=True)
    wanted_kind = is_private_label if wanted == "private" else is_public_label
    chosen = next((m for m in begins if wanted_kind(m.group(2))), begins[0])
    label = chosen.group(2)
    ends_after = [m for m in matches if m.group(1) == "END" and m.start() > chosen.end()]
    if not ends_after:
        return Block(label, text[chosen.end() :], has_begin=True, has_end=False)
    end = ends_after[0]
    if end.group(2) != label:
        raise key_error(
            "key_corrupted",
            "the -----BEGIN----- and -----END----- lines name different kinds of key",
            "copy the key file again without editing it",
        )
    if not _is_canonical_armor(chosen.group(0), label) or not _is_canonical_armor(
        end.group(0), label
    ):
        repairs.note(FIXED_ARMOR)
    outside = text[: chosen.start()] + "\n" + text[end.end() :]
    others = [m for m in begins if m is not chosen and wanted_kind(m.group(2))]
    if others and wanted_kind(label):
        raise key_error("key_multiple_keys")
    if outside.strip():
        repairs.note(IGNORED_SURROUNDING_TEXT)
    return Block(label, text[chosen.end() : end.start()], has_begin=True, has_end=True)


def _is_canonical_armor(line: str, label: str) -> bool:
    word = "BEGIN" if "BEGIN" in line else "END"
    if label.startswith("SSH2 "):
        return line == f"---- {word} {label} ----"
    return line == f"-----{word} {label}-----"


def read_body(inner: str, repairs: Repairs) -> Body:
    """Headers (``Proc-Type:``, ``DEK-Info:``) and decoded data of a PEM or OpenSSH block."""
    tokens = inner.split()
    headers: dict[str, str] = {}
    while tokens and ":" in tokens[0]:
        name, _, value = tokens.pop(0).partition(":")
        if not value and tokens:
            value = tokens.pop(0)
        if name not in ("Proc-Type", "DEK-Info") or not value or name in headers:
            raise key_error(
                "key_corrupted", "the key block holds a header line that does not belong there"
            )
        headers[name] = value
    if not tokens:
        raise key_error("key_truncated", "the key block holds no key data")
    for token in tokens:
        if not BASE64_TOKEN.fullmatch(token):
            raise key_error("key_corrupted", "the key data contains characters that are not base64")
    decoded = decode_base64("".join(tokens))
    if not _is_neatly_wrapped(inner, len(headers)):
        repairs.note(REWRAPPED_BODY)
    if decoded.padding_added:
        repairs.note(ADDED_PADDING)
    return Body(headers, decoded.data)


def _is_neatly_wrapped(inner: str, header_count: int) -> bool:
    lines = inner.strip("\n").split("\n")[header_count:]
    if header_count:
        if not lines or lines[0] != "":
            return False  # PEM wants one blank line after the headers
        lines = lines[1:]
    if not lines or any(not line or " " in line or "\t" in line for line in lines):
        return False
    width = len(lines[0])
    return (
        width <= _MAX_NEAT_WIDTH
        and all(len(line) == width for line in lines[:-1])
        and (len(lines[-1]) <= width)
    )
