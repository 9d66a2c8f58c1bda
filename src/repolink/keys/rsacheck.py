"""A fast soundness check for RSA private keys read from files.

OpenSSL's full RSA key validation tests p and q for primality, which takes a third of a
second for a 4096-bit key. repolink loads keys with that validation skipped and instead
checks what matters for an SSH key: that the numbers fit together and the key produces a
signature its public half accepts.
"""

from __future__ import annotations

import logging

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from repolink.keys.problems import key_error

log = logging.getLogger(__name__)

_PROBE = b"repolink rsa key check"


def ensure_rsa_key_works(key: rsa.RSAPrivateKey) -> None:
    """Raise ``key_corrupted`` unless ``key`` is internally consistent and signs correctly."""
    numbers = key.private_numbers()
    public = numbers.public_numbers
    if numbers.p * numbers.q != public.n or (numbers.iqmp * numbers.q) % numbers.p != 1:
        raise key_error("key_corrupted", "the numbers of this RSA key do not fit together")
    try:
        signature = key.sign(_PROBE, padding.PKCS1v15(), hashes.SHA256())
        key.public_key().verify(signature, _PROBE, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise key_error("key_corrupted", "this RSA key does not produce valid signatures") from None
