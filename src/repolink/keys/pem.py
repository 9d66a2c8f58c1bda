"""Classic PEM private keys: PKCS#1 (``RSA PRIVATE KEY``), SEC1 (``EC PRIVATE KEY``) and
PKCS#8 (``PRIVATE KEY``, ``ENCRYPTED PRIVATE KEY``), including OpenSSL's legacy
``Proc-Type: 4,ENCRYPTED`` encryption that ``ssh-keygen -m PEM -N …`` writes.

The DER inside is loaded by ``cryptography``; this module first checks the outer DER length
so that a cut-off body is reported as truncated rather than as a generic decoding failure.
RSA keys are checked by :mod:`repolink.keys.rsacheck` instead of OpenSSL's slow validation.
"""

from __future__ import annotations

import base64
import logging
import re
import textwrap

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from repolink.keys.armor import PKCS8_ENCRYPTED, Body
from repolink.keys.blob import check_rsa_size
from repolink.keys.model import PrivateKey
from repolink.keys.problems import key_error
from repolink.keys.rsacheck import ensure_rsa_key_works

log = logging.getLogger(__name__)

_DEK_INFO = re.compile(r"[A-Z0-9-]{1,40},[0-9A-Fa-f]{8,64}")


def load_pem_private(label: str, body: Body, passphrase: bytes | None) -> PrivateKey:
    """The private key in a PEM block with ``label`` whose body has been decoded."""
    legacy_encrypted = _legacy_encryption(body)
    encrypted = legacy_encrypted or label == PKCS8_ENCRYPTED
    if legacy_encrypted:
        # Ciphertext: its length is all that can be checked before decrypting.
        if len(body.data) % 8:
            raise key_error("key_truncated")
    else:
        _check_der_length(body.data)
    if encrypted and passphrase is None:
        raise key_error("key_passphrase_required")
    password = passphrase if encrypted else None
    try:
        if legacy_encrypted:
            crypto_key = serialization.load_pem_private_key(
                _legacy_pem(label, body), password, unsafe_skip_rsa_key_validation=True
            )
        else:
            crypto_key = serialization.load_der_private_key(
                body.data, password, unsafe_skip_rsa_key_validation=True
            )
    except UnsupportedAlgorithm:
        raise key_error("key_unsupported_type") from None
    except TypeError:
        # cryptography's way of saying the key is encrypted although the label said otherwise.
        if password is None:
            raise key_error("key_passphrase_required") from None
        raise key_error("key_corrupted") from None
    except ValueError:
        if password is not None:
            raise key_error("key_wrong_passphrase") from None
        raise key_error("key_corrupted") from None
    if isinstance(crypto_key, dsa.DSAPrivateKey):
        raise key_error("key_too_weak", "DSA keys are too weak to be accepted")
    if isinstance(crypto_key, rsa.RSAPrivateKey):
        check_rsa_size(crypto_key.key_size)  # before the check below spends time on it
        ensure_rsa_key_works(crypto_key)
    if isinstance(
        crypto_key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    ):
        return PrivateKey(crypto_key)
    raise key_error("key_unsupported_type")


def _legacy_encryption(body: Body) -> bool:
    proc_type = body.headers.get("Proc-Type")
    dek_info = body.headers.get("DEK-Info")
    if proc_type is None and dek_info is None:
        return False
    if proc_type != "4,ENCRYPTED" or dek_info is None or not _DEK_INFO.fullmatch(dek_info):
        raise key_error("key_corrupted", "the PEM encryption headers are damaged")
    return True


def _legacy_pem(label: str, body: Body) -> bytes:
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(body.data).decode("ascii"), 64))
    return (
        f"-----BEGIN {label}-----\n"
        f"Proc-Type: {body.headers['Proc-Type']}\n"
        f"DEK-Info: {body.headers['DEK-Info']}\n\n"
        f"{wrapped}\n"
        f"-----END {label}-----\n"
    ).encode("ascii")


def _check_der_length(data: bytes) -> None:
    """The outer DER SEQUENCE must span exactly the data: shorter data was cut off."""
    if len(data) < 2 or data[0] != 0x30:
        raise key_error("key_corrupted")
    first = data[1]
    if first < 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if not 1 <= count <= 3:
            raise key_error("key_corrupted")
        if len(data) < 2 + count:
            raise key_error("key_truncated")
        header, length = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    if header + length > len(data):
        raise key_error("key_truncated")
    if header + length < len(data):
        raise key_error("key_corrupted", "the key data goes on after the end of the key")
