"""Decoding the base64 that key files and key lines are made of, tolerant only where safe."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass

from repolink.keys.problems import key_error

log = logging.getLogger(__name__)

_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/=]+")


@dataclass(frozen=True)
class Decoded:
    data: bytes
    padding_added: bool  # the '=' padding was missing and has been supplied


def decode_base64(body: str) -> Decoded:
    """The bytes of ``body`` (no whitespace inside); missing ``=`` padding is supplied."""
    if not _BASE64.fullmatch(body):
        raise key_error("key_corrupted", "the key data contains characters that are not base64")
    core = body.rstrip("=")
    given_padding = len(body) - len(core)
    if len(core) % 4 == 1:
        # One lone character cannot encode a byte: the data was cut (or a character lost).
        raise key_error("key_truncated")
    needed_padding = -len(core) % 4
    if given_padding > needed_padding:
        raise key_error("key_corrupted", "the key data has '=' padding where none belongs")
    try:
        data = base64.b64decode(core + "=" * needed_padding, validate=True)
    except binascii.Error:
        raise key_error("key_corrupted") from None
    return Decoded(data, padding_added=given_padding < needed_padding)
