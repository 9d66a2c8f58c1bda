"""The named ways a key can be unusable: one stable code each, with a message and a fix.

Every :class:`KeyFormatError` raised by :mod:`repolink.keys` is built here, so the wording of
each code lives in one place. Messages are written from facts about the input (its kind, a
bit count, a line number) and never quote the input: it may be a private key.
"""

from __future__ import annotations

import logging
from typing import Literal

from repolink.errors import KeyFormatError

log = logging.getLogger(__name__)

KeyProblem = Literal[
    "key_empty",
    "key_is_public",
    "key_is_private",
    "key_missing_header",
    "key_missing_footer",
    "key_truncated",
    "key_corrupted",
    "key_passphrase_required",
    "key_wrong_passphrase",
    "key_putty_format",
    "key_unsupported_type",
    "key_too_weak",
    "key_type_mismatch",
    "key_not_a_key",
    "key_multiple_keys",
    "key_pem_unsupported",
]

_CATALOG: dict[KeyProblem, tuple[str, str]] = {
    "key_empty": (
        "the key is empty",
        "paste the whole key file, from its first line to its last",
    ),
    "key_is_public": (
        "this is a public key, but a private key is needed here",
        "paste the private key file (e.g. id_ed25519), not the .pub file",
    ),
    "key_is_private": (
        "this is a private key, but a public key is needed here; it was not stored or shown",
        "give the public half (the .pub file, or the output of `ssh-keygen -y -f KEY`)",
    ),
    "key_missing_header": (
        "the key has no -----BEGIN … ----- line",
        "copy the whole file, including its -----BEGIN … ----- and -----END … ----- lines",
    ),
    "key_missing_footer": (
        "the key has no -----END … ----- line",
        "copy the whole file, including its last line; if you did, the copy was cut short",
    ),
    "key_truncated": (
        "the key data ends before the key is complete",
        "copy the whole key again; part of it is missing",
    ),
    "key_corrupted": (
        "the key data is damaged and cannot be decoded",
        "copy the key file again without editing it; if it still fails, generate a new key",
    ),
    "key_passphrase_required": (
        "the private key is protected by a passphrase",
        "supply the passphrase, or remove it with `ssh-keygen -p -f KEY`",
    ),
    "key_wrong_passphrase": (
        "the passphrase does not decrypt the private key",
        "check the passphrase; if it is right, the key file is damaged",
    ),
    "key_putty_format": (
        "this is a PuTTY .ppk key, not an OpenSSH key",
        "convert it with `puttygen key.ppk -O private-openssh -o key` and use that file",
    ),
    "key_unsupported_type": (
        "this kind of key is not supported",
        "use an ed25519, RSA (2048 bits or more) or ECDSA (P-256/384/521) key",
    ),
    "key_too_weak": (
        "this key is too weak to be accepted",
        "generate a new key: `ssh-keygen -t ed25519` (or `repolink keys generate`)",
    ),
    "key_type_mismatch": (
        "the key type written before the key data differs from the type inside it",
        "copy the key line again unedited; the type word and the data must come from one key",
    ),
    "key_not_a_key": (
        "this does not look like an SSH key",
        "give an OpenSSH private key file or a public key line such as 'ssh-ed25519 AAAA… comment'",
    ),
    "key_multiple_keys": (
        "the input holds more than one key",
        "give exactly one key",
    ),
    "key_pem_unsupported": (
        "this key type has no classic PEM form",
        "write it in OpenSSH format (--format openssh); only RSA and ECDSA keys have classic PEM",
    ),
}


def key_error(
    code: KeyProblem, message: str | None = None, hint: str | None = None
) -> KeyFormatError:
    """The error for ``code``, with the catalogue's wording unless a more precise one is given."""
    default_message, default_hint = _CATALOG[code]
    return KeyFormatError(
        code,
        default_message if message is None else message,
        default_hint if hint is None else hint,
    )
