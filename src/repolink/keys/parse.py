"""Reading keys that people paste: the three public parsing functions.

Each parse first repairs what is safe to repair (:mod:`repolink.keys.repair`), then works
out what the text is (OpenSSH or PEM private key, PuTTY file, public key line, RFC 4716
block …), then reads it with the matching format module. Whatever the input, the only
exceptions that leave these functions are repolink's own errors, and their messages never
quote the input.
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.exceptions import UnsupportedAlgorithm

from repolink.keys.armor import (
    DSA_PRIVATE,
    OPENSSH_PRIVATE,
    PEM_PRIVATE,
    PEM_PUBLIC,
    SSH2_PRIVATE,
    SSH2_PUBLIC,
    find_block,
    has_armor,
    is_private_label,
    read_body,
)
from repolink.keys.b64 import BASE64_TOKEN
from repolink.keys.blob import is_key_type_word
from repolink.keys.keyline import read_key_lines, read_rfc4716, split_key_line
from repolink.keys.model import ParsedPrivateKey, ParsedPublicKey, PrivateKey, PublicKey
from repolink.keys.openssh import load_openssh_private
from repolink.keys.openssh_write import MAGIC
from repolink.keys.pem import load_pem_private
from repolink.keys.problems import key_error
from repolink.keys.repair import Repairs, normalise
from repolink.keys.wire import WireMalformed, WireReader, WireTruncated

log = logging.getLogger(__name__)

_PUTTY_MARK = "PuTTY-User-Key-File-"


def parse_private_key(text: str | bytes, passphrase: str | bytes | None = None) -> ParsedPrivateKey:
    """The private key in ``text`` (OpenSSH, PKCS#1, PKCS#8 or SEC1), with the repairs made."""
    with _only_key_errors():
        repairs = Repairs()
        clean = normalise(text, repairs)
        key = _read_private(clean, repairs, _passphrase_bytes(passphrase))
        return ParsedPrivateKey(key, repairs.as_tuple())


def parse_public_key(text: str | bytes) -> ParsedPublicKey:
    """The public key in ``text`` (a ``.pub``/``authorized_keys`` line or an RFC 4716 block)."""
    with _only_key_errors():
        repairs = Repairs()
        clean = normalise(text, repairs)
        key = _read_public(clean, repairs)
        return ParsedPublicKey(key, repairs.as_tuple())


def parse_key(
    text: str | bytes, passphrase: str | bytes | None = None
) -> ParsedPrivateKey | ParsedPublicKey:
    """Whichever kind of key ``text`` holds, private or public."""
    with _only_key_errors():
        repairs = Repairs()
        clean = normalise(text, repairs)
        if _looks_private(clean):
            private = _read_private(clean, repairs, _passphrase_bytes(passphrase))
            return ParsedPrivateKey(private, repairs.as_tuple())
        return ParsedPublicKey(_read_public(clean, repairs), repairs.as_tuple())


@contextmanager
def _only_key_errors() -> Iterator[None]:
    # The format modules name every failure they can foresee; this is the net under them,
    # so that no input whatsoever gets another exception type (or its message) out.
    try:
        yield
    except (
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        OverflowError,
        struct.error,
        UnsupportedAlgorithm,
    ) as exc:
        log.debug("key parse failed with %s", type(exc).__name__)
        raise key_error("key_corrupted") from None


def _passphrase_bytes(passphrase: str | bytes | None) -> bytes | None:
    if isinstance(passphrase, str):
        return passphrase.encode("utf-8")
    return passphrase


def _looks_private(text: str) -> bool:
    if _PUTTY_MARK in text:
        return True
    block = find_block(text, Repairs(), "private") if has_armor(text) else None
    if block is not None:
        return is_private_label(block.label)
    joined = "".join(text.split())
    return _bare_base64_kind(joined) == "private"


def _read_private(text: str, repairs: Repairs, passphrase: bytes | None) -> PrivateKey:
    if not text:
        raise key_error("key_empty")
    if _PUTTY_MARK in text:
        raise key_error("key_putty_format")
    block = find_block(text, repairs, "private")
    if block is None:
        raise _unarmored_private(text)
    label = block.label
    if label == SSH2_PUBLIC or label in PEM_PUBLIC:
        raise key_error("key_is_public")
    if label == DSA_PRIVATE:
        raise key_error("key_too_weak", "DSA keys are too weak to be accepted")
    if label == SSH2_PRIVATE:
        raise key_error(
            "key_unsupported_type",
            "this is an ssh.com (SSH2) private key, not an OpenSSH one",
            "convert it with `ssh-keygen -i -f KEY > KEY.openssh` and use that file",
        )
    if label != OPENSSH_PRIVATE and label not in PEM_PRIVATE:
        raise key_error("key_not_a_key", "this is a PEM block of some other kind, not an SSH key")
    if not block.has_begin:
        raise key_error("key_missing_header")
    if not block.has_end:
        raise key_error("key_missing_footer")
    body = read_body(block.inner, repairs)
    if label == OPENSSH_PRIVATE:
        if body.headers:
            raise key_error("key_corrupted", "an OpenSSH key block holds PEM headers")
        return load_openssh_private(body.data, passphrase)
    return load_pem_private(label, body, passphrase)


def _unarmored_private(text: str) -> Exception:
    first_line = text.split("\n", 1)[0]
    if split_key_line(first_line) is not None:
        return key_error("key_is_public")
    kind = _bare_base64_kind("".join(text.split()))
    if kind == "public":
        return key_error("key_is_public")
    if kind is not None:
        return key_error("key_missing_header")
    return key_error("key_not_a_key")


def _read_public(text: str, repairs: Repairs) -> PublicKey:
    if not text:
        raise key_error("key_empty")
    if _PUTTY_MARK in text:
        raise key_error(
            "key_putty_format",
            hint="convert it with `puttygen key.ppk -O public-openssh -o key.pub` and use that",
        )
    block = find_block(text, repairs, "public")
    if block is None:
        if _bare_base64_kind("".join(text.split())) == "private":
            raise key_error("key_is_private")
        return read_key_lines(text, repairs)
    label = block.label
    if is_private_label(label):
        raise key_error("key_is_private")
    if label in PEM_PUBLIC:
        raise key_error(
            "key_unsupported_type",
            "this is a PEM public key, not an OpenSSH one",
            "convert it with `ssh-keygen -i -m PKCS8 -f key.pem` (`-m PEM` for RSA PUBLIC KEY)",
        )
    if label != SSH2_PUBLIC:
        raise key_error("key_not_a_key", "this is a PEM block of some other kind, not an SSH key")
    if not block.has_begin:
        raise key_error("key_missing_header")
    if not block.has_end:
        raise key_error("key_missing_footer")
    return read_rfc4716(block.inner, repairs)


def _bare_base64_kind(joined: str) -> str | None:
    """For key data pasted without its armor or type word: "private", "public", "unknown"
    base64, or ``None`` when ``joined`` is not a long run of base64 at all."""
    if len(joined) < 64 or not BASE64_TOKEN.fullmatch(joined):
        return None
    try:
        data = base64.b64decode(joined[: len(joined) // 4 * 4])
    except binascii.Error:
        return "unknown"
    if data.startswith(MAGIC) or data[:1] == b"\x30":
        return "private"  # an OpenSSH key file, or DER (PKCS#1, PKCS#8, SEC1)
    try:
        if is_key_type_word(WireReader(data).text()):
            return "public"
    except (WireTruncated, WireMalformed):
        pass
    return "unknown"
