"""Writing the OpenSSH private key file (``openssh-key-v1``, OpenSSH's PROTOCOL.key) as
``ssh-keygen`` writes it.

Written here rather than by ``cryptography`` because its writer leaves the comment out: the
comment belongs inside the private file too (``ssh-keygen -y`` and ``-l`` read it from there).
With a passphrase the private section is encrypted as ssh-keygen does by default: aes256-ctr
under a key and IV derived by bcrypt-pbkdf (16 bytes of salt, 16 rounds).
"""

from __future__ import annotations

import base64
import logging
import os
from typing import Protocol

import bcrypt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from repolink.keys.armor import OPENSSH_PRIVATE
from repolink.keys.blob import CURVES
from repolink.keys.wire import encode_mpint, encode_string, encode_uint32

CryptoPrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class PublicHalf(Protocol):
    """What the file holds of the public key (``keys.model.PublicKey`` is one); a protocol, so
    this writer needs nothing of the model that calls it."""

    @property
    def key_type(self) -> str: ...

    @property
    def blob(self) -> bytes: ...

    @property
    def comment(self) -> str: ...


log = logging.getLogger(__name__)

MAGIC = b"openssh-key-v1\x00"
CIPHER = "aes256-ctr"
KDF = "bcrypt"
KDF_ROUNDS = 16  # ssh-keygen's default (-a)
_SALT_LENGTH = 16
_KEY_LENGTH, _IV_LENGTH, _CIPHER_BLOCK = 32, 16, 16
_PLAIN_BLOCK = 8
_LINE_LENGTH = 70


def write_openssh_private(
    crypto_key: CryptoPrivateKey, public: PublicHalf, passphrase: bytes | None = None
) -> bytes:
    """The armoured ``OPENSSH PRIVATE KEY`` file of ``crypto_key``, holding ``public``'s
    comment; encrypted with ``passphrase`` when one is given (it must not be empty)."""
    check = os.urandom(4)
    private = (
        check
        + check
        + encode_string(public.key_type.encode("ascii"))
        + _private_fields(crypto_key, public)
        + encode_string(public.comment.encode("utf-8"))
    )
    if passphrase is None:
        header = encode_string(b"none") + encode_string(b"none") + encode_string(b"")
        section = _padded(private, _PLAIN_BLOCK)
    else:
        salt = os.urandom(_SALT_LENGTH)
        options = encode_string(salt) + encode_uint32(KDF_ROUNDS)
        header = (
            encode_string(CIPHER.encode()) + encode_string(KDF.encode()) + encode_string(options)
        )
        section = _encrypted(_padded(private, _CIPHER_BLOCK), passphrase, salt)
    body = MAGIC + header + encode_uint32(1) + encode_string(public.blob) + encode_string(section)
    return _armoured(body)


def _private_fields(crypto_key: CryptoPrivateKey, public: PublicHalf) -> bytes:
    if isinstance(crypto_key, ed25519.Ed25519PrivateKey):
        seed = crypto_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        point = crypto_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return encode_string(point) + encode_string(seed + point)
    if isinstance(crypto_key, rsa.RSAPrivateKey):
        numbers = crypto_key.private_numbers()
        return b"".join(
            encode_mpint(value)
            for value in (
                numbers.public_numbers.n,
                numbers.public_numbers.e,
                numbers.d,
                numbers.iqmp,
                numbers.p,
                numbers.q,
            )
        )
    if isinstance(crypto_key, ec.EllipticCurvePrivateKey):
        point = crypto_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        curve_name = CURVES[public.key_type].ssh_name.encode("ascii")
        scalar = crypto_key.private_numbers().private_value
        return encode_string(curve_name) + encode_string(point) + encode_mpint(scalar)
    raise TypeError(f"no OpenSSH encoding for {type(crypto_key).__name__}")


def _padded(data: bytes, block: int) -> bytes:
    # PROTOCOL.key: pad with 1, 2, 3 … up to a whole number of cipher blocks.
    missing = -len(data) % block
    return data + bytes(range(1, missing + 1))


def _encrypted(plain: bytes, passphrase: bytes, salt: bytes) -> bytes:
    # bcrypt-pbkdf's rounds are not bcrypt's cost: 16 is ssh-keygen's own default, and what
    # the bcrypt package warns about is the other meaning.
    secret = bcrypt.kdf(
        passphrase, salt, _KEY_LENGTH + _IV_LENGTH, KDF_ROUNDS, ignore_few_rounds=True
    )
    key, iv = secret[:_KEY_LENGTH], secret[_KEY_LENGTH:]
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(plain) + encryptor.finalize()


def _armoured(body: bytes) -> bytes:
    text = base64.b64encode(body).decode("ascii")
    lines = [text[i : i + _LINE_LENGTH] for i in range(0, len(text), _LINE_LENGTH)]
    return (
        f"-----BEGIN {OPENSSH_PRIVATE}-----\n"
        + "\n".join(lines)
        + f"\n-----END {OPENSSH_PRIVATE}-----\n"
    ).encode("ascii")
