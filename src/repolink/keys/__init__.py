"""SSH key material: generate, parse (repairing paste mistakes), fingerprint.

Parsing never lets anything but a :class:`~repolink.errors.RepolinkError` out, each failure
with its own ``code`` (``key_is_public``, ``key_truncated``, ``key_wrong_passphrase`` …), and
never puts the input, which may be a private key, into an error, a log line or a repr.

Each name below is imported from its module on first use: the package is the parent of
:mod:`repolink.keys.public`, which a command that only reads stored keys imports without
loading the cryptography library that generating and parsing need (issue 10 §2).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repolink.keys.fingerprints import fingerprint_md5, fingerprint_sha256
    from repolink.keys.generate import (
        DEFAULT_BITS,
        ECDSA_SIZES,
        KEY_TYPES,
        RSA_SIZES,
        generate_key,
        generate_key_async,
    )
    from repolink.keys.model import ParsedPrivateKey, ParsedPublicKey, PrivateKey
    from repolink.keys.parse import parse_key, parse_private_key, parse_public_key
    from repolink.keys.public import PublicKey

_MODULE_OF = {
    "fingerprint_md5": "fingerprints",
    "fingerprint_sha256": "fingerprints",
    "DEFAULT_BITS": "generate",
    "ECDSA_SIZES": "generate",
    "KEY_TYPES": "generate",
    "RSA_SIZES": "generate",
    "generate_key": "generate",
    "generate_key_async": "generate",
    "ParsedPrivateKey": "model",
    "ParsedPublicKey": "model",
    "PrivateKey": "model",
    "parse_key": "parse",
    "parse_private_key": "parse",
    "parse_public_key": "parse",
    "PublicKey": "public",
}

__all__ = [
    "DEFAULT_BITS",
    "ECDSA_SIZES",
    "KEY_TYPES",
    "RSA_SIZES",
    "ParsedPrivateKey",
    "ParsedPublicKey",
    "PrivateKey",
    "PublicKey",
    "fingerprint_md5",
    "fingerprint_sha256",
    "generate_key",
    "generate_key_async",
    "parse_key",
    "parse_private_key",
    "parse_public_key",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once: later look-ups find it without this function
    return value
