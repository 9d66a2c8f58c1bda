"""Property tests: whatever the input, only repolink's own errors escape the key parsers,
and any key they do return is sound."""

from __future__ import annotations

import os
import re
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repolink.errors import RepolinkError
from repolink.keys import (
    ParsedPrivateKey,
    ParsedPublicKey,
    PrivateKey,
    fingerprint_md5,
    fingerprint_sha256,
    parse_key,
    parse_private_key,
    parse_public_key,
)
from repolink.keys.blob import inspect_blob

PASS = b"fuzz pass"
SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SHA256 = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
MD5 = re.compile(r"MD5(:[0-9a-f]{2}){16}")


@cache
def _corpus() -> tuple[str, ...]:
    """Real keys in every format the parsers read (generated once per test run)."""
    ed = ed25519.Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    fast_kdf = serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(1).build(PASS)
    encoding, formats = serialization.Encoding.PEM, serialization.PrivateFormat
    plain = serialization.NoEncryption()
    texts = [
        ed.private_bytes(encoding, formats.OpenSSH, plain),
        ed.private_bytes(encoding, formats.OpenSSH, fast_kdf),
        ec_key.private_bytes(encoding, formats.OpenSSH, plain),
        rsa_key.private_bytes(encoding, formats.TraditionalOpenSSL, plain),
        ec_key.private_bytes(encoding, formats.TraditionalOpenSSL, plain),
        ec_key.private_bytes(encoding, formats.PKCS8, plain),
        ec_key.private_bytes(
            encoding, formats.TraditionalOpenSSL, serialization.BestAvailableEncryption(PASS)
        ),
    ]
    public = [
        PrivateKey(key, "fuzz@test").public_key.openssh_line().encode()
        for key in (ed, rsa_key, ec_key)
    ]
    rfc4716 = _rfc4716(PrivateKey(ed).public_key.openssh_line().split()[1])
    return tuple(text.decode() for text in [*texts, *public, rfc4716])


def _rfc4716(body: str) -> bytes:
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return "\n".join(
        [
            "---- BEGIN SSH2 PUBLIC KEY ----",
            'Comment: "fuzz"',
            *lines,
            "---- END SSH2 PUBLIC KEY ----",
        ]
    ).encode()


@st.composite
def mangled_keys(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(_corpus()))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "truncate", "break", "replace"]))
        if action == "delete":
            length = draw(st.integers(1, 40))
            text = text[:position] + text[position + length :]
        elif action == "insert":
            junk = draw(
                st.text(alphabet="AQgw+/=\n \t\r\"'\\-:AZaz09", max_size=12) | st.text(max_size=4)
            )
            text = text[:position] + junk + text[position:]
        elif action == "truncate":
            text = text[:position]
        elif action == "break":
            text = (
                text[:position]
                + draw(st.sampled_from(["\n", "\r\n", " ", "\\n", "  \n  "]))
                + text[position:]
            )
        else:
            if position < len(text):
                replacement = draw(st.characters(codec="ascii"))
                text = text[:position] + replacement + text[position + 1 :]
    return text


def _check_sound(result: ParsedPrivateKey | ParsedPublicKey) -> None:
    public = result.key.public_key if isinstance(result, ParsedPrivateKey) else result.key
    info = inspect_blob(public.blob)
    assert info.key_type == public.key_type
    assert info.bits == public.bits
    assert SHA256.fullmatch(public.sha256_fingerprint)
    assert MD5.fullmatch(public.md5_fingerprint)
    assert public.sha256_fingerprint == fingerprint_sha256(public.blob)
    assert public.md5_fingerprint == fingerprint_md5(public.blob)
    assert "\n" not in public.openssh_line()
    assert all(isinstance(name, str) and name for name in result.repairs)


def _attempt(parse: object, *args: object) -> None:
    try:
        result = parse(*args)  # type: ignore[operator]
    except RepolinkError as error:
        assert error.code and error.message and "\n" not in error.one_line()
        return
    _check_sound(result)


@SETTINGS
@given(st.text(max_size=2000))
def test_arbitrary_text(text: str) -> None:
    _attempt(parse_private_key, text)
    _attempt(parse_public_key, text)
    _attempt(parse_key, text, PASS)


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    _attempt(parse_private_key, data)
    _attempt(parse_public_key, data)
    _attempt(parse_key, data)


@SETTINGS
@given(
    st.sampled_from(
        [
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----",
            "---- BEGIN SSH2 PUBLIC KEY ----",
            "ssh-ed25519",
            "ssh-rsa",
            "ecdsa-sha2-nistp256",
            'command="x" ssh-ed25519',
        ]
    ),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n ",
        max_size=600,
    ),
    st.booleans(),
)
def test_key_shaped_noise(prefix: str, body: str, with_footer: bool) -> None:
    text = prefix + "\n" + body if prefix.startswith("-") else prefix + " " + body
    if with_footer and prefix.startswith("-"):
        text += "\n" + prefix.replace("BEGIN", "END")
    _attempt(parse_private_key, text, PASS)
    _attempt(parse_public_key, text)
    _attempt(parse_key, text)


@SETTINGS
@given(mangled_keys(), st.sampled_from([None, PASS, b"wrong"]))
def test_mangled_real_keys(text: str, passphrase: bytes | None) -> None:
    _attempt(parse_private_key, text, passphrase)
    _attempt(parse_public_key, text)
    _attempt(parse_key, text, passphrase)
