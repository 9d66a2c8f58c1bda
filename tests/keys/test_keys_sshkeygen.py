"""Cross-checks against the real ssh-keygen: its keys parse to its fingerprints, in every format."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from repolink.keys import ParsedPrivateKey, parse_key, parse_private_key, parse_public_key

PASSPHRASE = "correct horse"
KINDS = [
    ("ed25519", 256),
    ("rsa", 2048),
    ("rsa", 3072),
    ("rsa", 4096),
    ("ecdsa", 256),
    ("ecdsa", 384),
    ("ecdsa", 521),
]
FORMATS = ["openssh", "PEM", "PKCS8"]
EXPECTED_HEADER = {
    ("rsa", "PEM"): "-----BEGIN RSA PRIVATE KEY-----",
    ("ecdsa", "PEM"): "-----BEGIN EC PRIVATE KEY-----",
    ("rsa", "PKCS8"): "-----BEGIN PRIVATE KEY-----",
    ("ecdsa", "PKCS8"): "-----BEGIN PRIVATE KEY-----",
}


def _expected_header(kind: str, key_format: str, passphrase: str | None) -> str:
    header = EXPECTED_HEADER.get((kind, key_format), "-----BEGIN OPENSSH PRIVATE KEY-----")
    if passphrase and header == "-----BEGIN PRIVATE KEY-----":
        return "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    return header


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE], ids=["plain", "passphrase"])
@pytest.mark.parametrize("key_format", FORMATS)
@pytest.mark.parametrize(("kind", "bits"), KINDS, ids=[f"{k}{b}" for k, b in KINDS])
def test_ssh_keygen_private_keys_parse_to_its_fingerprints(
    keygen_keys: Any,
    ssh_keygen: Any,
    kind: str,
    bits: int,
    key_format: str,
    passphrase: str | None,
) -> None:
    made = keygen_keys.get(kind, bits, key_format, passphrase)
    text = made.private.read_text()
    # ssh-keygen writes ed25519 keys in OpenSSH format whatever -m says.
    assert text.splitlines()[0] == _expected_header(kind, key_format, passphrase)
    if passphrase and "OPENSSH" not in text.splitlines()[0]:
        assert "ENCRYPTED" in text

    parsed = parse_private_key(text, passphrase)

    keygen_bits, sha256 = made.fingerprint(ssh_keygen, "sha256")
    _, md5 = made.fingerprint(ssh_keygen, "md5")
    public = parsed.key.public_key
    assert public.sha256_fingerprint == sha256
    assert public.md5_fingerprint == md5
    assert public.bits == keygen_bits == bits
    assert parsed.key.bits == bits
    pub_type, pub_base64 = made.public.read_text().split()[:2]
    assert public.openssh_line(with_comment=False) == f"{pub_type} {pub_base64}"
    assert parsed.key.key_type == pub_type
    assert parsed.repairs == ()
    if text.startswith("-----BEGIN OPENSSH"):
        assert public.comment == made.comment  # OpenSSH files keep the comment inside


@pytest.mark.parametrize(("kind", "bits"), KINDS, ids=[f"{k}{b}" for k, b in KINDS])
def test_ssh_keygen_public_keys_parse_to_its_fingerprints(
    keygen_keys: Any, ssh_keygen: Any, kind: str, bits: int
) -> None:
    made = keygen_keys.get(kind, bits)
    parsed = parse_public_key(made.public.read_text())
    assert parsed.key.sha256_fingerprint == made.fingerprint(ssh_keygen, "sha256")[1]
    assert parsed.key.md5_fingerprint == made.fingerprint(ssh_keygen, "md5")[1]
    assert parsed.key.comment == made.comment
    assert parsed.key.openssh_line() == made.public.read_text().strip()
    assert parsed.repairs == ()


@pytest.mark.parametrize(("kind", "bits"), KINDS, ids=[f"{k}{b}" for k, b in KINDS])
def test_rfc4716_export_of_ssh_keygen_parses_back(
    keygen_keys: Any, ssh_keygen: Any, kind: str, bits: int
) -> None:
    made = keygen_keys.get(kind, bits)
    exported = ssh_keygen("-e", "-f", str(made.public)).stdout
    assert exported.startswith("---- BEGIN SSH2 PUBLIC KEY ----")

    parsed = parse_public_key(exported)

    assert parsed.key == parse_public_key(made.public.read_text()).key
    assert parsed.key.sha256_fingerprint == made.fingerprint(ssh_keygen, "sha256")[1]
    assert "converted by" in parsed.key.comment  # ssh-keygen's Comment: header, unquoted
    assert not parsed.key.comment.startswith('"')


def test_parse_key_tells_private_from_public(keygen_keys: Any) -> None:
    made = keygen_keys.get("ecdsa", 256, "PKCS8", PASSPHRASE)
    private = parse_key(made.private.read_text(), PASSPHRASE)
    public = parse_key(made.public.read_text())
    assert private.kind == "private"
    assert public.kind == "public"
    assert isinstance(private, ParsedPrivateKey)
    assert private.key.public_key == public.key


@pytest.mark.parametrize("passphrase", [None, b"pkcs8 pass"], ids=["plain", "encrypted"])
def test_ed25519_pkcs8_keys_parse(ssh_keygen: Any, tmp_path: Any, passphrase: bytes | None) -> None:
    # ssh-keygen never writes ed25519 as PKCS#8; OpenSSL-based tools do.
    crypto_key = ed25519.Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = crypto_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    pub_path = tmp_path / "key.pub"
    pub_path.write_bytes(
        crypto_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b"\n"
    )

    parsed = parse_private_key(pem, passphrase)

    sha256 = ssh_keygen("-l", "-E", "sha256", "-f", str(pub_path)).stdout.split()[1]
    assert parsed.key.public_key.sha256_fingerprint == sha256
    assert parsed.key.key_type == "ssh-ed25519"
