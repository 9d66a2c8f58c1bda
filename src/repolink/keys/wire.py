"""The SSH wire encoding (RFC 4251 §5) that key blobs and OpenSSH key files are made of.

The reader distinguishes data that simply ends too early (:class:`WireTruncated`) from data
that cannot be right (:class:`WireMalformed`); the parsers turn these into ``key_truncated``
and ``key_corrupted``. Both are internal: they never leave :mod:`repolink.keys`.
"""

from __future__ import annotations

import logging
import struct

log = logging.getLogger(__name__)


class WireTruncated(Exception):
    """The data ended in the middle of a field."""


class WireMalformed(Exception):
    """A field holds a value no valid encoder would write."""


class WireReader:
    """Reads SSH wire fields from a byte string, front to back."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, count: int) -> bytes:
        if count > self.remaining:
            raise WireTruncated
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        """A string that must be printable ASCII (key type and curve names)."""
        raw = self.string()
        if not raw or any(byte < 0x21 or byte > 0x7E for byte in raw):
            raise WireMalformed
        return raw.decode("ascii")

    def mpint(self) -> int:
        """A non-negative multiple-precision integer in its one minimal encoding."""
        raw = self.string()
        if not raw:
            return 0
        if raw[0] & 0x80:
            raise WireMalformed  # negative: never valid in a key
        if raw[0] == 0 and (len(raw) == 1 or not raw[1] & 0x80):
            raise WireMalformed  # a needless leading zero byte
        return int.from_bytes(raw, "big")

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def expect_end(self) -> None:
        if self.remaining:
            raise WireMalformed


def encode_uint32(value: int) -> bytes:
    return struct.pack(">I", value)


def encode_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def encode_mpint(value: int) -> bytes:
    if value < 0:
        raise ValueError("mpint must not be negative here")
    if value == 0:
        return encode_string(b"")
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")
    return encode_string(raw)
