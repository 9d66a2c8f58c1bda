"""Making new key pairs: ed25519 (default), RSA 2048/3072/4096, ECDSA P-256/384/521."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from repolink.errors import ValidationError
from repolink.keys.model import CryptoPrivateKey, PrivateKey, check_comment
from repolink.keys.problems import key_error

log = logging.getLogger(__name__)

KEY_TYPES = ("ed25519", "rsa", "ecdsa")
RSA_SIZES = (2048, 3072, 4096)
ECDSA_SIZES = (256, 384, 521)
DEFAULT_BITS = {"ed25519": 256, "rsa": 3072, "ecdsa": 256}
_ALLOWED_BITS = {"ed25519": (256,), "rsa": RSA_SIZES, "ecdsa": ECDSA_SIZES}
_CURVES: dict[int, ec.EllipticCurve] = {
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}


def generate_key(
    key_type: str = "ed25519", bits: int | None = None, comment: str = ""
) -> PrivateKey:
    """A new private key. RSA takes noticeable CPU time: from async code, use
    :func:`generate_key_async`."""
    kind = key_type.lower()
    if kind not in KEY_TYPES:
        raise key_error(
            "key_unsupported_type",
            "repolink generates ed25519, rsa and ecdsa keys only",
            "choose --type ed25519 (recommended), rsa or ecdsa",
        )
    size = DEFAULT_BITS[kind] if bits is None else bits
    if size not in _ALLOWED_BITS[kind]:
        allowed = ", ".join(str(value) for value in _ALLOWED_BITS[kind])
        raise ValidationError(
            "key_bits_invalid",
            f"{kind} keys cannot have {size} bits",
            f"choose one of: {allowed} (or leave the size out for the default)",
        )
    check_comment(comment)
    crypto_key: CryptoPrivateKey
    if kind == "ed25519":
        crypto_key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        crypto_key = rsa.generate_private_key(public_exponent=65537, key_size=size)
    else:
        crypto_key = ec.generate_private_key(_CURVES[size])
    log.debug("generated a %s key of %d bits", kind, size)
    return PrivateKey(crypto_key, comment)


async def generate_key_async(
    key_type: str = "ed25519", bits: int | None = None, comment: str = ""
) -> PrivateKey:
    """:func:`generate_key` in a worker thread, so the event loop keeps running meanwhile."""
    import asyncio  # not at import: a command that only reads keys never starts a loop

    return await asyncio.to_thread(generate_key, key_type, bits, comment)
