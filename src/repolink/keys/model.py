"""The key values the rest of repolink handles: a public key, a private key, a parse result."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from repolink.errors import ValidationError
from repolink.keys.blob import CURVES, ED25519, RSA, check_rsa_size
from repolink.keys.openssh_write import CryptoPrivateKey as CryptoPrivateKey
from repolink.keys.openssh_write import write_openssh_private
from repolink.keys.problems import key_error
from repolink.keys.public import PublicKey as PublicKey
from repolink.keys.public import check_comment as check_comment

log = logging.getLogger(__name__)

_CURVE_TYPES = {
    curve.curve.name: key_type
    for key_type, curve in CURVES.items()
    if not key_type.startswith("sk-")
}


class PrivateKey:
    """A private key held as a ``cryptography`` key object, with its public half.

    Its text forms (``repr``, ``str``, f-strings, logging) show only the type and the
    fingerprint. The key material leaves the object only through :meth:`to_openssh` and
    :meth:`to_pem`; it cannot be pickled or copied out by accident.
    """

    __slots__ = ("_crypto_key", "_public_key")

    _crypto_key: CryptoPrivateKey
    _public_key: PublicKey

    def __init__(self, crypto_key: CryptoPrivateKey, comment: str = "") -> None:
        key_type, bits = _describe(crypto_key)
        openssh = crypto_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        blob = base64.b64decode(openssh.split()[1])
        object.__setattr__(self, "_crypto_key", crypto_key)
        object.__setattr__(
            self, "_public_key", PublicKey(key_type, blob, check_comment(comment), bits)
        )

    @property
    def crypto_key(self) -> CryptoPrivateKey:
        """The ``cryptography`` private key object (for signing, or handing to asyncssh)."""
        return self._crypto_key

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    @property
    def key_type(self) -> str:
        return self._public_key.key_type

    @property
    def bits(self) -> int:
        return self._public_key.bits

    @property
    def comment(self) -> str:
        return self._public_key.comment

    def to_openssh(self, passphrase: bytes | None = None) -> bytes:
        """The OpenSSH private key file (``BEGIN OPENSSH PRIVATE KEY``) with the comment inside,
        as ``ssh-keygen`` writes it; encrypted (bcrypt KDF, aes256-ctr) with ``passphrase``."""
        return write_openssh_private(self._crypto_key, self._public_key, _usable(passphrase))

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """Classic PEM: ``BEGIN RSA PRIVATE KEY`` (PKCS#1) or ``BEGIN EC PRIVATE KEY`` (SEC1),
        encrypted the way OpenSSL does with ``passphrase``. The format has no comment."""
        if isinstance(self._crypto_key, ed25519.Ed25519PrivateKey):
            raise key_error(
                "key_pem_unsupported", "ed25519 keys have no classic PEM form (only OpenSSH)"
            )
        usable = _usable(passphrase)
        encryption: serialization.KeySerializationEncryption = (
            serialization.NoEncryption()
            if usable is None
            else serialization.BestAvailableEncryption(usable)
        )
        return self._crypto_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
        )

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("PrivateKey is immutable")

    def __repr__(self) -> str:
        return (
            f"<PrivateKey {self.key_type} {self.bits} bits {self._public_key.sha256_fingerprint}>"
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PrivateKey):
            return NotImplemented
        return self._public_key == other._public_key

    def __hash__(self) -> int:
        return hash(self._public_key)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        # Pickles end up in caches, queues and logs; key material must be written on purpose.
        raise TypeError("a PrivateKey cannot be pickled; serialise it with to_openssh()")

    def __copy__(self) -> PrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> PrivateKey:
        return self


def _usable(passphrase: bytes | None) -> bytes | None:
    """``passphrase`` if it can protect a key: ``None`` (no protection) or not empty."""
    if passphrase is not None and not passphrase:
        raise ValidationError(
            "key_passphrase_empty",
            "an empty passphrase cannot protect a key",
            "give a non-empty passphrase, or none to write the key unencrypted",
        )
    return passphrase


def _describe(crypto_key: CryptoPrivateKey) -> tuple[str, int]:
    """The wire type name and size of a key object, refusing the ones repolink does not take."""
    if isinstance(crypto_key, ed25519.Ed25519PrivateKey):
        return ED25519, 256
    if isinstance(crypto_key, rsa.RSAPrivateKey):
        return RSA, check_rsa_size(crypto_key.key_size)
    if isinstance(crypto_key, ec.EllipticCurvePrivateKey):
        key_type = _CURVE_TYPES.get(crypto_key.curve.name)
        if key_type is None:
            raise key_error(
                "key_unsupported_type", "this ECDSA key uses a curve other than P-256/384/521"
            )
        return key_type, CURVES[key_type].bits
    raise key_error("key_unsupported_type")


@dataclass(frozen=True)
class ParsedPublicKey:
    """A parsed public key and the names of the repairs made to the input to read it."""

    key: PublicKey
    repairs: tuple[str, ...] = ()
    kind: ClassVar[Literal["public"]] = "public"


@dataclass(frozen=True)
class ParsedPrivateKey:
    """A parsed private key and the names of the repairs made to the input to read it."""

    key: PrivateKey
    repairs: tuple[str, ...] = ()
    kind: ClassVar[Literal["private"]] = "private"
