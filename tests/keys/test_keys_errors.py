"""Each named error: its own code, a one-line message, a fix, and never the input echoed."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning

from repolink.errors import KeyFormatError
from repolink.keys import PrivateKey, parse_key, parse_private_key, parse_public_key
from support.keytexts import PUTTY

PASS = b"right passphrase"
KNOWN_TYPES = {"ssh-ed25519", "ecdsa-sha2-nistp256"}  # named by type-mismatch messages
Parser = Callable[[str | bytes], Any]


def _pem(crypto_key: Any, private_format: Any, password: bytes | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    data: bytes = crypto_key.private_bytes(serialization.Encoding.PEM, private_format, encryption)
    return data.decode()


def _public_line(crypto_key: Any) -> str:
    data: bytes = crypto_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return data.decode()


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def openssh_text(ed_key: ed25519.Ed25519PrivateKey) -> str:
    return _pem(ed_key, serialization.PrivateFormat.OpenSSH)


@pytest.fixture(scope="module")
def openssh_encrypted(ed_key: ed25519.Ed25519PrivateKey) -> str:
    # Few KDF rounds keep the test fast; the format is the same as ssh-keygen's.
    encryption = serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(2).build(PASS)
    return ed_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def public_line(ed_key: ed25519.Ed25519PrivateKey) -> str:
    return _public_line(ed_key) + " me@host"


def _fails(parser: Parser, text: str | bytes, code: str, **kwargs: Any) -> KeyFormatError:
    with pytest.raises(KeyFormatError) as caught:
        parser(text, **kwargs)
    error = caught.value
    assert error.code == code, (error.code, error.message)
    assert error.message and "\n" not in error.message
    assert error.hint and "\n" not in error.hint
    assert "\n" not in error.one_line()
    source = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    for piece in source.split():
        if len(piece) >= 12 and piece not in KNOWN_TYPES:
            assert piece not in error.one_line(), "the error quotes its input"
    return error


def _replace_body(text: str, transform: Callable[[str], str]) -> str:
    lines = text.strip().splitlines()
    body = transform("".join(lines[1:-1]))
    return "\n".join([lines[0], *[body[i : i + 70] for i in range(0, len(body), 70)], lines[-1]])


@pytest.mark.parametrize("text", ["", "   \n\t\n", b"", '""', "``````"])
@pytest.mark.parametrize("parser", [parse_private_key, parse_public_key, parse_key])
def test_key_empty(parser: Parser, text: str | bytes) -> None:
    _fails(parser, text, "key_empty")


def test_key_empty_when_only_comment_lines() -> None:
    _fails(parse_public_key, "# nothing here\n#\n", "key_empty")


def test_key_is_public(public_line: str, ed_key: ed25519.Ed25519PrivateKey) -> None:
    error = _fails(parse_private_key, public_line, "key_is_public")
    assert ".pub" in error.hint
    _fails(parse_private_key, public_line.split()[1], "key_is_public")
    rfc4716 = (
        "---- BEGIN SSH2 PUBLIC KEY ----\n"
        + public_line.split()[1]
        + "\n---- END SSH2 PUBLIC KEY ----"
    )
    _fails(parse_private_key, rfc4716, "key_is_public")
    spki = (
        ed_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    _fails(parse_private_key, spki, "key_is_public")


def test_key_is_private(openssh_text: str, rsa_key: rsa.RSAPrivateKey) -> None:
    error = _fails(parse_public_key, openssh_text, "key_is_private")
    assert ".pub" in error.hint
    _fails(parse_public_key, _pem(rsa_key, serialization.PrivateFormat.PKCS8), "key_is_private")
    bare_body = "".join(openssh_text.strip().splitlines()[1:-1])
    _fails(parse_public_key, bare_body, "key_is_private")
    # Even a private key missing its footer is recognised, and not echoed.
    _fails(parse_public_key, openssh_text.strip().rsplit("\n", 1)[0], "key_is_private")


def test_key_missing_header(openssh_text: str, public_line: str) -> None:
    without_begin = openssh_text.split("\n", 1)[1]
    _fails(parse_private_key, without_begin, "key_missing_header")
    _fails(parse_key, without_begin, "key_missing_header")
    bare_body = "".join(openssh_text.strip().splitlines()[1:-1])
    _fails(parse_private_key, bare_body, "key_missing_header")
    error = _fails(parse_public_key, public_line.split(" ", 1)[1], "key_missing_header")
    assert "ssh-ed25519" in error.hint
    rfc4716 = public_line.split()[1] + "\n---- END SSH2 PUBLIC KEY ----\n"
    _fails(parse_public_key, rfc4716, "key_missing_header")


def test_key_missing_footer(
    openssh_text: str, rsa_key: rsa.RSAPrivateKey, public_line: str
) -> None:
    _fails(parse_private_key, openssh_text.strip().rsplit("\n", 1)[0], "key_missing_footer")
    pem = _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    _fails(parse_private_key, pem.strip().rsplit("\n", 1)[0], "key_missing_footer")
    rfc4716 = "---- BEGIN SSH2 PUBLIC KEY ----\n" + public_line.split()[1] + "\n"
    _fails(parse_public_key, rfc4716, "key_missing_footer")


def test_key_truncated(openssh_text: str, rsa_key: rsa.RSAPrivateKey, public_line: str) -> None:
    lines = openssh_text.strip().splitlines()
    body = "".join(lines[1:-1])
    for keep in (0.3, 0.6, 0.95):
        kept = body[: int(len(body) * keep) // 4 * 4]
        _fails(parse_private_key, "\n".join([lines[0], kept, lines[-1]]), "key_truncated")
    pem = _pem(rsa_key, serialization.PrivateFormat.PKCS8)
    lines = pem.strip().splitlines()
    _fails(parse_private_key, "\n".join(lines[:5] + lines[-1:]), "key_truncated")
    key_type, body, _ = public_line.split()
    _fails(parse_public_key, f"{key_type} {body[:40]}", "key_truncated")
    _fails(parse_public_key, f"{key_type} {body[:41]} me@host", "key_truncated")
    _fails(parse_public_key, key_type, "key_truncated")


def test_key_corrupted(openssh_text: str, rsa_key: rsa.RSAPrivateKey, public_line: str) -> None:
    def flip(position: int) -> Callable[[str], str]:
        def change(body: str) -> str:
            index = int(len(body) * position / 100)
            return body[:index] + ("A" if body[index] != "A" else "B") + body[index + 1 :]

        return change

    _fails(parse_private_key, _replace_body(openssh_text, flip(0)), "key_corrupted")  # the magic
    _fails(parse_private_key, _replace_body(openssh_text, flip(60)), "key_corrupted")  # the secret
    _fails(
        parse_private_key,
        _replace_body(openssh_text, lambda b: b[:50] + "!" + b[50:]),
        "key_corrupted",
    )
    mismatched = openssh_text.replace("END OPENSSH PRIVATE KEY", "END RSA PRIVATE KEY")
    _fails(parse_private_key, mismatched, "key_corrupted")
    pem = _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    _fails(parse_private_key, _replace_body(pem, flip(50)), "key_corrupted")
    rsa_line = _public_line(rsa_key)
    key_type, body = rsa_line.split()
    _fails(parse_public_key, f"{key_type} {body[:4]}Z{body[5:]}", "key_corrupted")


def test_key_passphrase_required(openssh_encrypted: str, rsa_key: rsa.RSAPrivateKey) -> None:
    _fails(parse_private_key, openssh_encrypted, "key_passphrase_required")
    pkcs8 = _pem(rsa_key, serialization.PrivateFormat.PKCS8, PASS)
    assert "ENCRYPTED PRIVATE KEY" in pkcs8
    _fails(parse_private_key, pkcs8, "key_passphrase_required")
    legacy = _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL, PASS)
    assert "Proc-Type: 4,ENCRYPTED" in legacy
    _fails(parse_private_key, legacy, "key_passphrase_required")
    _fails(parse_key, legacy, "key_passphrase_required")


def test_key_wrong_passphrase(openssh_encrypted: str, rsa_key: rsa.RSAPrivateKey) -> None:
    _fails(parse_private_key, openssh_encrypted, "key_wrong_passphrase", passphrase="wrong")
    _fails(parse_private_key, openssh_encrypted, "key_wrong_passphrase", passphrase=b"")
    pkcs8 = _pem(rsa_key, serialization.PrivateFormat.PKCS8, PASS)
    _fails(parse_private_key, pkcs8, "key_wrong_passphrase", passphrase="wrong")
    legacy = _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL, PASS)
    _fails(parse_private_key, legacy, "key_wrong_passphrase", passphrase=b"wrong")
    # ... and the right one works, as str or bytes
    assert parse_private_key(openssh_encrypted, PASS.decode()).key.key_type == "ssh-ed25519"
    assert parse_private_key(legacy, PASS).key.bits == 2048


@pytest.mark.parametrize("cipher", ["aes256-gcm@openssh.com", "aes256-cbc", "aes128-ctr"])
def test_ssh_keygen_ciphers_right_and_wrong_passphrase(
    ssh_keygen: Any, tmp_path: Path, cipher: str
) -> None:
    path = tmp_path / "key"
    ssh_keygen(
        "-q", "-t", "ed25519", "-a", "2", "-Z", cipher, "-N", "secret words", "-f", str(path)
    )
    text = path.read_text()
    fingerprint = ssh_keygen("-l", "-E", "sha256", "-f", f"{path}.pub").stdout.split()[1]
    assert parse_private_key(text, "secret words").key.public_key.sha256_fingerprint == fingerprint
    _fails(parse_private_key, text, "key_wrong_passphrase", passphrase="secret word")


def test_unencrypted_key_ignores_a_passphrase(
    openssh_text: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert parse_private_key(openssh_text, "unused").key.key_type == "ssh-ed25519"
    pem = _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert parse_private_key(pem, "unused").key.bits == 2048


def test_key_putty_format() -> None:
    error = _fails(parse_private_key, PUTTY, "key_putty_format")
    assert "puttygen key.ppk -O private-openssh -o key" in error.hint
    error = _fails(parse_public_key, PUTTY, "key_putty_format")
    assert "public-openssh" in error.hint
    _fails(parse_key, PUTTY.replace("\n", "\r\n"), "key_putty_format")


def test_key_unsupported_type(public_line: str) -> None:
    ed448_key = _pem(ed448.Ed448PrivateKey.generate(), serialization.PrivateFormat.PKCS8)
    _fails(parse_private_key, ed448_key, "key_unsupported_type")
    p224 = _pem(ec.generate_private_key(ec.SECP224R1()), serialization.PrivateFormat.PKCS8)
    _fails(parse_private_key, p224, "key_unsupported_type")
    cert = "ssh-ed25519-cert-v01@openssh.com " + public_line.split()[1]
    error = _fails(parse_public_key, cert, "key_unsupported_type")
    assert "certificate" in error.message
    _fails(parse_public_key, "ssh-ed448 AAAAC3NzaC1lZDQ0OAAAADk=", "key_unsupported_type")
    spki = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    error = _fails(parse_public_key, spki, "key_unsupported_type")
    assert "ssh-keygen -i -m PKCS8" in error.hint
    ssh_com = (
        "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\n"
        "P2/56wAAAA==\n"
        "---- END SSH2 ENCRYPTED PRIVATE KEY ----"
    )
    _fails(parse_private_key, ssh_com, "key_unsupported_type")


def test_absurd_kdf_rounds_are_refused_before_any_work(openssh_encrypted: str) -> None:
    lines = openssh_encrypted.strip().splitlines()
    data = bytearray(base64.b64decode("".join(lines[1:-1])))
    marker = data.index(b"bcrypt") + len(b"bcrypt") + 4 + 4 + 16  # kdfoptions: salt, rounds
    assert struct.unpack(">I", data[marker : marker + 4])[0] == 2
    data[marker : marker + 4] = struct.pack(">I", 4_000_000_000)
    hostile = "\n".join([lines[0], base64.b64encode(bytes(data)).decode(), lines[-1]])
    error = _fails(parse_private_key, hostile, "key_unsupported_type", passphrase=PASS)
    assert "KDF rounds" in error.message


def test_key_too_weak(rsa_key: rsa.RSAPrivateKey) -> None:
    dsa_key = dsa.generate_private_key(2048)
    for private_format in (
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.PrivateFormat.PKCS8,
    ):
        _fails(parse_private_key, _pem(dsa_key, private_format), "key_too_weak")
    # OpenSSH's own DSA keys are 1024 bits, the only size its format allows.
    with pytest.warns(CryptographyDeprecationWarning):
        weak_dsa = dsa.generate_private_key(1024)  # noqa: S505 -- the weak key under test
        openssh_dsa = _pem(weak_dsa, serialization.PrivateFormat.OpenSSH)
    _fails(parse_private_key, openssh_dsa, "key_too_weak")
    with pytest.warns(CryptographyDeprecationWarning):
        dsa_line = _public_line(weak_dsa)
    error = _fails(parse_public_key, dsa_line, "key_too_weak")
    assert "DSA" in error.message
    small = rsa.generate_private_key(65537, 1024)  # noqa: S505 -- the weak key under test
    for private_format in (
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.PrivateFormat.PKCS8,
        serialization.PrivateFormat.OpenSSH,
    ):
        error = _fails(parse_private_key, _pem(small, private_format), "key_too_weak")
        assert "1024 bits" in error.message
    _fails(parse_public_key, _public_line(small), "key_too_weak")
    with pytest.raises(KeyFormatError) as caught:
        PrivateKey(small)
    assert caught.value.code == "key_too_weak"


def test_key_type_mismatch(public_line: str, rsa_key: rsa.RSAPrivateKey) -> None:
    _fails(
        parse_public_key, "ecdsa-sha2-nistp256 " + public_line.split(" ", 1)[1], "key_type_mismatch"
    )
    _fails(parse_public_key, "ssh-ed25519 " + _public_line(rsa_key).split()[1], "key_type_mismatch")


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "password123",
        b"\x00\x01\xff\xfe binary",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
        "x" * 300_000,
    ],
    ids=["words", "word", "binary", "certificate", "huge"],
)
@pytest.mark.parametrize("parser", [parse_private_key, parse_public_key, parse_key])
def test_key_not_a_key(parser: Parser, text: str | bytes) -> None:
    _fails(parser, text, "key_not_a_key")


@pytest.mark.parametrize("value", [None, 42, ["ssh-ed25519"]])
def test_wrong_argument_types_are_named_too(value: Any) -> None:
    _fails(parse_key, value, "key_not_a_key")


def test_key_multiple_keys(public_line: str, openssh_text: str, rsa_key: rsa.RSAPrivateKey) -> None:
    _fails(parse_public_key, public_line + "\n" + _public_line(rsa_key), "key_multiple_keys")
    pem = _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    _fails(parse_private_key, openssh_text + pem, "key_multiple_keys")


def test_key_pem_unsupported(ed_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(KeyFormatError) as caught:
        PrivateKey(ed_key).to_pem()
    assert caught.value.code == "key_pem_unsupported"
    assert "openssh" in caught.value.hint
