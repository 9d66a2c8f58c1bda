"""SSH key material: generate, parse (repairing paste mistakes), fingerprint.

Parsing never lets anything but a :class:`~repolink.errors.RepolinkError` out, each failure
with its own ``code`` (``key_is_public``, ``key_truncated``, ``key_wrong_passphrase`` …), and
never puts the input, which may be a private key, into an error, a log line or a repr.
"""

from __future__ import annotations

from repolink.keys.fingerprints import fingerprint_md5, fingerprint_sha256
from repolink.keys.generate import (
    DEFAULT_BITS,
    ECDSA_SIZES,
    KEY_TYPES,
    RSA_SIZES,
    generate_key,
    generate_key_async,
)
from repolink.keys.model import ParsedPrivateKey, ParsedPublicKey, PrivateKey, PublicKey
from repolink.keys.parse import parse_key, parse_private_key, parse_public_key

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
