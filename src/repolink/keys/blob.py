"""Public key blobs: the key types repolink knows, and checking that a blob is a sound key.

A blob is the wire-format public key (RFC 4253 §6.6, PROTOCOL.u2f for the sk- types) that
sits base64-encoded in a ``.pub`` line. :func:`inspect_blob` accepts exactly the encodings
OpenSSH itself writes, so the fingerprint of an accepted blob is the one ``ssh-keygen -l``
prints for the same key.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from repolink.keys.problems import key_error
from repolink.keys.wire import WireMalformed, WireReader, WireTruncated

log = logging.getLogger(__name__)

ED25519 = "ssh-ed25519"
RSA = "ssh-rsa"
ECDSA_NISTP256 = "ecdsa-sha2-nistp256"
ECDSA_NISTP384 = "ecdsa-sha2-nistp384"
ECDSA_NISTP521 = "ecdsa-sha2-nistp521"
SK_ED25519 = "sk-ssh-ed25519@openssh.com"
SK_ECDSA_NISTP256 = "sk-ecdsa-sha2-nistp256@openssh.com"
DSA = "ssh-dss"

SUPPORTED_TYPES = frozenset(
    {ED25519, RSA, ECDSA_NISTP256, ECDSA_NISTP384, ECDSA_NISTP521, SK_ED25519, SK_ECDSA_NISTP256}
)
MIN_RSA_BITS = 2048
# OpenSSH refuses larger moduli too; the bound also keeps hostile input cheap to check.
MAX_RSA_BITS = 16384


@dataclass(frozen=True)
class Curve:
    ssh_name: str  # the curve identifier inside the blob, e.g. "nistp256"
    curve: ec.EllipticCurve
    bits: int

    @property
    def point_length(self) -> int:
        """Length of an uncompressed point: 0x04, then x and y."""
        return 1 + 2 * ((self.bits + 7) // 8)


CURVES: dict[str, Curve] = {
    ECDSA_NISTP256: Curve("nistp256", ec.SECP256R1(), 256),
    ECDSA_NISTP384: Curve("nistp384", ec.SECP384R1(), 384),
    ECDSA_NISTP521: Curve("nistp521", ec.SECP521R1(), 521),
}
CURVES[SK_ECDSA_NISTP256] = CURVES[ECDSA_NISTP256]

# Type words that are SSH key types but that repolink refuses: certificates, other algorithms.
_TYPE_WORD = re.compile(r"(?:ssh|ecdsa|sk|x509v3|rsa-sha2|spki|pgp|null)-[A-Za-z0-9@._-]{1,80}")


def is_key_type_word(word: str) -> bool:
    """Whether ``word`` is written like an SSH key type name (known or not)."""
    return word in SUPPORTED_TYPES or word == DSA or _TYPE_WORD.fullmatch(word) is not None


def refuse_type(word: str) -> None:
    """Raise the right error for a type word that is not a supported key type."""
    if word in SUPPORTED_TYPES:
        return
    if word == DSA:
        raise key_error("key_too_weak", "DSA (ssh-dss) keys are too weak to be accepted")
    if word.endswith("-cert-v01@openssh.com"):
        raise key_error(
            "key_unsupported_type",
            "this is an SSH certificate, not a plain public key",
            "give the plain public key (the .pub file without -cert)",
        )
    raise key_error("key_unsupported_type")


@dataclass(frozen=True)
class BlobInfo:
    key_type: str
    bits: int


def inspect_blob(blob: bytes) -> BlobInfo:
    """The type and size of a public key blob; raises ``KeyFormatError`` if it is not sound."""
    reader = WireReader(blob)
    try:
        key_type = reader.text()
        refuse_type(key_type)
        bits = _read_key_body(key_type, reader)
        reader.expect_end()
    except WireTruncated:
        raise key_error("key_truncated") from None
    except (WireMalformed, UnicodeDecodeError):
        raise key_error("key_corrupted") from None
    return BlobInfo(key_type, bits)


def _read_key_body(key_type: str, reader: WireReader) -> int:
    if key_type in (ED25519, SK_ED25519):
        point = reader.string()
        if len(point) != 32:
            raise WireMalformed
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(point)
        except ValueError:
            raise WireMalformed from None
        bits = 256
    elif key_type == RSA:
        exponent = reader.mpint()
        modulus = reader.mpint()
        bits = check_rsa_size(modulus.bit_length())
        try:
            rsa.RSAPublicNumbers(exponent, modulus).public_key()
        except ValueError:
            raise WireMalformed from None
    else:
        curve = CURVES[key_type]
        if reader.text() != curve.ssh_name:
            raise WireMalformed
        point = reader.string()
        # Only the uncompressed form: it is what OpenSSH writes and fingerprints.
        if len(point) != curve.point_length or point[0] != 0x04:
            raise WireMalformed
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(curve.curve, point)
        except ValueError:
            raise WireMalformed from None
        bits = curve.bits
    if key_type in (SK_ED25519, SK_ECDSA_NISTP256):
        reader.string()  # the FIDO application, e.g. "ssh:"
    return bits


def check_rsa_size(bits: int) -> int:
    """``bits`` if an RSA modulus of that size is acceptable, else the right error."""
    if bits < MIN_RSA_BITS:
        raise key_error(
            "key_too_weak",
            f"this RSA key has {bits} bits; at least {MIN_RSA_BITS} are required",
        )
    if bits > MAX_RSA_BITS:
        raise key_error(
            "key_unsupported_type",
            f"this RSA key has {bits} bits; at most {MAX_RSA_BITS} are supported",
        )
    return bits
