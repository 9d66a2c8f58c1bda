"""HMAC-SHA256 body signatures: one function signs, one checks, both over the raw bytes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from repolink.signing import same_secret, sign_body, signature_matches

SECRET = b"s3cret-of-the-project"
BODY = b'{"push": {"changes": []}}'


def test_a_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    assert sign_body(SECRET, BODY) == f"sha256={expected}"


def test_the_right_signature_matches_whatever_the_prefix_case() -> None:
    signature = sign_body(SECRET, BODY)
    assert signature_matches(SECRET, BODY, signature)
    assert signature_matches(SECRET, BODY, "SHA256=" + signature[7:].upper())
    assert signature_matches(SECRET, BODY, f"  {signature} ")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + hmac.new(SECRET, BODY, "sha1").hexdigest(),  # GitHub's legacy header
        sign_body(SECRET, BODY)[:-1],  # truncated
        sign_body(SECRET, BODY) + "0",  # one character too many
        sign_body(SECRET, BODY)[7:],  # no algorithm prefix
        sign_body(b"another secret", BODY),
        sign_body(SECRET, BODY + b" "),
        "sha256=" + "é" * 64,
    ],
)
def test_anything_else_does_not_match(header: str | None) -> None:
    assert not signature_matches(SECRET, BODY, header)


def test_one_changed_byte_of_the_body_breaks_the_signature() -> None:
    signature = sign_body(SECRET, BODY)
    for index in range(len(BODY)):
        changed = bytearray(BODY)
        changed[index] ^= 0x01
        assert not signature_matches(SECRET, bytes(changed), signature)


def test_a_secret_sent_as_is_compares_exactly() -> None:
    assert same_secret(SECRET, SECRET.decode())
    assert not same_secret(SECRET, None)
    assert not same_secret(SECRET, "")
    assert not same_secret(SECRET, SECRET.decode()[:-1])
    assert not same_secret(SECRET, SECRET.decode() + "x")
    assert not same_secret(SECRET, SECRET.decode().upper())
