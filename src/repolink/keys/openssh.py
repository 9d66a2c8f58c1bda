"""The OpenSSH private key file format (``openssh-key-v1``, see OpenSSH's PROTOCOL.key).

Read here rather than handed whole to ``cryptography`` so that every failure gets its own
name (truncated, corrupted, passphrase needed, wrong passphrase, too weak) before any slow
work, the key's comment is kept, and the deliberately slow bcrypt KDF runs once at most.
Key objects are built with ``cryptography`` from the decoded numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import bcrypt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from repolink.keys.blob import (
    CURVES,
    ED25519,
    RSA,
    SK_ECDSA_NISTP256,
    SK_ED25519,
    check_rsa_size,
    inspect_blob,
)
from repolink.keys.model import CryptoPrivateKey, PrivateKey
from repolink.keys.openssh_write import MAGIC
from repolink.keys.problems import key_error
from repolink.keys.rsacheck import ensure_rsa_key_works
from repolink.keys.wire import WireMalformed, WireReader, WireTruncated

log = logging.getLogger(__name__)

# ssh-keygen's default is 16 rounds (~0.15 s); far more is either a hostile file or a key
# nobody could use interactively either.
MAX_KDF_ROUNDS = 1000
_MAX_SALT = 64


@dataclass(frozen=True)
class _CipherSpec:
    key_len: int
    iv_len: int
    block_len: int
    tag_len: int
    mode: str  # "ctr", "cbc" or "gcm"


_CIPHERS = {
    "aes128-ctr": _CipherSpec(16, 16, 16, 0, "ctr"),
    "aes192-ctr": _CipherSpec(24, 16, 16, 0, "ctr"),
    "aes256-ctr": _CipherSpec(32, 16, 16, 0, "ctr"),
    "aes128-cbc": _CipherSpec(16, 16, 16, 0, "cbc"),
    "aes192-cbc": _CipherSpec(24, 16, 16, 0, "cbc"),
    "aes256-cbc": _CipherSpec(32, 16, 16, 0, "cbc"),
    "aes128-gcm@openssh.com": _CipherSpec(16, 12, 16, 16, "gcm"),
    "aes256-gcm@openssh.com": _CipherSpec(32, 12, 16, 16, "gcm"),
}
_UNENCRYPTED_BLOCK = 8


@dataclass(frozen=True)
class _Container:
    cipher: str
    salt: bytes
    rounds: int
    public_blob: bytes
    private_section: bytes  # encrypted unless cipher == "none"
    tag: bytes

    @property
    def encrypted(self) -> bool:
        return self.cipher != "none"


def load_openssh_private(data: bytes, passphrase: bytes | None) -> PrivateKey:
    """The private key in the decoded body of an ``OPENSSH PRIVATE KEY`` block."""
    try:
        container = _read_container(data)
        public = inspect_blob(container.public_blob)
        if public.key_type in (SK_ED25519, SK_ECDSA_NISTP256):
            raise key_error(
                "key_unsupported_type",
                "this is a security-key (sk-) private key file: the key itself is on hardware",
                "use a key kept in software (ed25519, RSA or ECDSA) for repolink",
            )
        plain = _decrypt(container, passphrase)
        crypto_key, comment = _read_private_section(plain, public.key_type, container.encrypted)
    except WireTruncated:
        raise key_error("key_truncated") from None
    except WireMalformed:
        raise key_error("key_corrupted") from None
    key = PrivateKey(crypto_key, comment)
    if key.public_key.blob != container.public_blob:
        raise key_error(
            "key_corrupted", "the public and private halves stored in the key file differ"
        )
    return key


def _read_container(data: bytes) -> _Container:
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise WireTruncated
        raise WireMalformed
    reader = WireReader(data[len(MAGIC) :])
    cipher = reader.text()
    kdf = reader.text()
    kdf_options = WireReader(reader.string())
    key_count = reader.uint32()
    if key_count != 1:
        if key_count > 1:
            raise key_error("key_multiple_keys", "the key file holds more than one key")
        raise WireMalformed
    public_blob = reader.string()
    if cipher == "none":
        if kdf != "none":
            raise WireMalformed
        kdf_options.expect_end()
        private_section = reader.string()
        reader.expect_end()
        return _Container(cipher, b"", 0, public_blob, private_section, b"")
    spec = _CIPHERS.get(cipher)
    if spec is None or kdf != "bcrypt":
        raise key_error(
            "key_unsupported_type",
            "the key file is encrypted with a cipher or KDF repolink does not support",
            "re-encrypt it with `ssh-keygen -p -Z aes256-ctr -f KEY`",
        )
    salt = kdf_options.string()
    rounds = kdf_options.uint32()
    kdf_options.expect_end()
    private_section = reader.string()
    tag = reader.take(spec.tag_len)
    reader.expect_end()
    if not private_section or len(private_section) % spec.block_len:
        raise WireMalformed
    return _Container(cipher, salt, rounds, public_blob, private_section, tag)


def _decrypt(container: _Container, passphrase: bytes | None) -> bytes:
    if not container.encrypted:
        return container.private_section
    if passphrase is None:
        raise key_error("key_passphrase_required")
    if not 0 < len(container.salt) <= _MAX_SALT or container.rounds < 1:
        raise WireMalformed
    if container.rounds > MAX_KDF_ROUNDS:
        raise key_error(
            "key_unsupported_type",
            f"the key file asks for {container.rounds} KDF rounds; at most "
            f"{MAX_KDF_ROUNDS} are accepted",
            "re-encrypt it with fewer rounds: `ssh-keygen -p -a 100 -f KEY`",
        )
    if not passphrase:
        raise key_error("key_wrong_passphrase")
    spec = _CIPHERS[container.cipher]
    secret = bcrypt.kdf(
        passphrase,
        container.salt,
        spec.key_len + spec.iv_len,
        container.rounds,
        ignore_few_rounds=True,
    )
    key, iv = secret[: spec.key_len], secret[spec.key_len :]
    mode: modes.Mode
    if spec.mode == "ctr":
        mode = modes.CTR(iv)
    elif spec.mode == "cbc":
        mode = modes.CBC(iv)
    else:
        mode = modes.GCM(iv, container.tag)
    decryptor = Cipher(algorithms.AES(key), mode).decryptor()
    try:
        return decryptor.update(container.private_section) + decryptor.finalize()
    except InvalidTag:
        raise key_error("key_wrong_passphrase") from None


def _read_private_section(
    plain: bytes, key_type: str, encrypted: bool
) -> tuple[CryptoPrivateKey, str]:
    reader = WireReader(plain)
    check_one, check_two = reader.uint32(), reader.uint32()
    if check_one != check_two:
        # The check integers are the only test a CTR/CBC decryption has of the passphrase.
        if encrypted:
            raise key_error("key_wrong_passphrase")
        raise WireMalformed
    if reader.text() != key_type:
        raise WireMalformed
    crypto_key = _read_key_fields(reader, key_type)
    comment_bytes = reader.string()
    padding = reader.rest()
    if padding != bytes(range(1, len(padding) + 1)) or len(padding) >= 16:
        raise WireMalformed
    comment = comment_bytes.decode("utf-8", errors="replace")
    comment = "".join(" " if ord(char) < 0x20 or ord(char) == 0x7F else char for char in comment)
    return crypto_key, comment.strip()


def _read_key_fields(reader: WireReader, key_type: str) -> CryptoPrivateKey:
    try:
        if key_type == ED25519:
            public = reader.string()
            secret = reader.string()
            if len(public) != 32 or len(secret) != 64 or secret[32:] != public:
                raise WireMalformed
            return ed25519.Ed25519PrivateKey.from_private_bytes(secret[:32])
        if key_type == RSA:
            modulus, exponent, private_exponent, iqmp, p, q = (reader.mpint() for _ in range(6))
            check_rsa_size(modulus.bit_length())
            if p < 3 or q < 3:
                raise WireMalformed
            numbers = rsa.RSAPrivateNumbers(
                p=p,
                q=q,
                d=private_exponent,
                dmp1=rsa.rsa_crt_dmp1(private_exponent, p),
                dmq1=rsa.rsa_crt_dmq1(private_exponent, q),
                iqmp=iqmp,
                public_numbers=rsa.RSAPublicNumbers(exponent, modulus),
            )
            key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
            ensure_rsa_key_works(key)
            return key
        curve = CURVES[key_type]
        if reader.text() != curve.ssh_name:
            raise WireMalformed
        reader.string()  # the public point; checked against the derived one by the caller
        scalar = reader.mpint()
        return ec.derive_private_key(scalar, curve.curve)
    except ValueError:
        raise WireMalformed from None
