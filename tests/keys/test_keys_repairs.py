"""Each safe repair: the mangled paste parses to the same key and the repair is named."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from repolink.keys import PrivateKey, PublicKey, parse_key, parse_private_key, parse_public_key
from repolink.keys import repair as names


@pytest.fixture(scope="module")
def ed_key() -> PrivateKey:
    return PrivateKey(ed25519.Ed25519PrivateKey.generate(), "ed@test")


@pytest.fixture(scope="module")
def rsa_crypto() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 3072)


@pytest.fixture(scope="module")
def openssh_text(ed_key: PrivateKey) -> str:
    return ed_key.to_openssh().decode()


@pytest.fixture(scope="module")
def pem_text() -> str:
    crypto_key = ec.generate_private_key(ec.SECP256R1())
    return crypto_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def public_line(ed_key: PrivateKey) -> str:
    return ed_key.public_key.openssh_line()


@pytest.fixture(scope="module")
def padded_public_line(rsa_crypto: rsa.RSAPrivateKey) -> str:
    line = rsa_crypto.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert line.endswith(b"=")  # RSA 3072 blobs need base64 padding
    return line.decode() + " rsa@test"


def _private(text: str, expected: str, *repairs: str) -> None:
    parsed = parse_private_key(text)
    assert parsed.key == parse_private_key(expected).key
    for name in repairs:
        assert name in parsed.repairs, parsed.repairs
    # parse_key must agree with the specific parser, repairs included
    assert parse_key(text).repairs == parsed.repairs


def _public(text: str, expected: str, *repairs: str) -> PublicKey:
    parsed = parse_public_key(text)
    reference = parse_public_key(expected).key
    assert parsed.key == reference
    assert parsed.key.comment == reference.comment
    for name in repairs:
        assert name in parsed.repairs, parsed.repairs
    assert parse_key(text).repairs == parsed.repairs
    return parsed.key


def test_clean_input_needs_no_repair(openssh_text: str, pem_text: str, public_line: str) -> None:
    assert parse_private_key(openssh_text).repairs == ()
    assert parse_private_key(pem_text).repairs == ()
    assert parse_private_key(openssh_text.rstrip("\n")).repairs == ()
    assert parse_public_key(public_line + "\n").repairs == ()


def test_crlf_line_endings(openssh_text: str, public_line: str) -> None:
    _private(openssh_text.replace("\n", "\r\n"), openssh_text, names.CONVERTED_CRLF)
    _public(public_line + "\r\n", public_line, names.CONVERTED_CRLF)


def test_cr_line_endings(pem_text: str) -> None:
    _private(pem_text.replace("\n", "\r"), pem_text, names.CONVERTED_CR)


def test_leading_and_trailing_whitespace(openssh_text: str, public_line: str) -> None:
    _private("  \n\t" + openssh_text + "   \n ", openssh_text, names.STRIPPED_WHITESPACE)
    _public("   " + public_line + "\t", public_line, names.STRIPPED_WHITESPACE)


@pytest.mark.parametrize(("opening", "closing"), [('"', '"'), ("'", "'"), ("`", "`"), ("“", "”")])
def test_surrounding_quotes(
    openssh_text: str, public_line: str, opening: str, closing: str
) -> None:
    _private(opening + openssh_text + closing, openssh_text, names.REMOVED_QUOTES)
    _public(opening + public_line + closing, public_line, names.REMOVED_QUOTES)


def test_markdown_code_fence(openssh_text: str, public_line: str) -> None:
    _private("```text\n" + openssh_text + "```\n", openssh_text, names.REMOVED_CODE_FENCE)
    _public("```\n" + public_line + "\n```", public_line, names.REMOVED_CODE_FENCE)


def test_literal_newline_escapes_from_json(
    openssh_text: str, pem_text: str, public_line: str
) -> None:
    # What one copies out of an API response: quotes and \n escapes, \/ for slashes.
    as_json = json.dumps(openssh_text).replace("/", "\\/")
    assert "\n" not in as_json
    _private(as_json, openssh_text, names.UNESCAPED_NEWLINES, names.REMOVED_QUOTES)
    _private(json.dumps(pem_text)[1:-1], pem_text, names.UNESCAPED_NEWLINES)
    _public(json.dumps(public_line + "\n"), public_line, names.UNESCAPED_NEWLINES)


def test_doubly_escaped_json(openssh_text: str) -> None:
    twice = json.dumps(json.dumps(openssh_text))
    _private(twice, openssh_text, names.UNESCAPED_NEWLINES, names.REMOVED_QUOTES)


def test_indentation(openssh_text: str, pem_text: str) -> None:
    # A key pasted into YAML or a Python string keeps the indentation of its block.
    _private(textwrap.indent(openssh_text, "    "), openssh_text, names.REMOVED_INDENTATION)
    _private("key: |\n" + textwrap.indent(pem_text, "\t"), pem_text, names.REMOVED_INDENTATION)


def test_trailing_spaces_on_lines(openssh_text: str) -> None:
    spaced = "\n".join(line + "  " for line in openssh_text.splitlines())
    _private(spaced, openssh_text, names.REMOVED_TRAILING_SPACES)


def test_public_key_broken_across_lines(public_line: str, padded_public_line: str) -> None:
    key_type, body, comment = public_line.split(" ", 2)
    broken = f"{key_type} {body[:30]}\n{body[30:]} {comment}"
    key = _public(broken, public_line, names.JOINED_LINES)
    assert key.comment == comment
    rsa_type, rsa_body, rsa_comment = padded_public_line.split(" ", 2)
    wrapped = "\n".join([rsa_type, *textwrap.wrap(rsa_body, 64), rsa_comment])
    _public(wrapped, padded_public_line, names.JOINED_LINES)


def test_public_key_body_split_by_spaces(public_line: str) -> None:
    key_type, body, comment = public_line.split(" ", 2)
    split = f"{key_type} {body[:20]} {body[20:50]}  {body[50:]} {comment}"
    key = _public(split, public_line, names.JOINED_SPACES)
    assert key.comment == comment


def test_pem_body_rewrapped(openssh_text: str, pem_text: str) -> None:
    one_line = " ".join(pem_text.split("\n")).strip()
    _private(one_line, pem_text, names.REWRAPPED_BODY)
    lines = openssh_text.strip().splitlines()
    body = "".join(lines[1:-1])
    rewrapped = "\n".join([lines[0], *_ragged(body), lines[-1]])
    _private(rewrapped, openssh_text, names.REWRAPPED_BODY)
    # A body wrapped evenly at another width is fine as it is.
    even = "\n".join([lines[0], *textwrap.wrap(body, 41), lines[-1]])
    assert names.REWRAPPED_BODY not in parse_private_key(even).repairs
    unwrapped = "\n".join([lines[0], "".join(lines[1:-1]), lines[-1]])
    _private(unwrapped, openssh_text, names.REWRAPPED_BODY)
    with_blank_lines = openssh_text.replace("\n", "\n\n")
    _private(with_blank_lines, openssh_text, names.REWRAPPED_BODY)


def _ragged(body: str) -> list[str]:
    """The body cut into lines of uneven width, as a hand edit or a narrow window leaves it."""
    pieces, start, width = [], 0, 20
    while start < len(body):
        pieces.append(body[start : start + width])
        start += width
        width = 50 if width == 20 else 20
    return pieces


def test_missing_base64_padding(padded_public_line: str) -> None:
    key_type, body, comment = padded_public_line.split(" ", 2)
    _public(f"{key_type} {body.rstrip('=')} {comment}", padded_public_line, names.ADDED_PADDING)


def test_authorized_keys_options(public_line: str) -> None:
    _public(
        'restrict,command="git-upload-pack" ' + public_line, public_line, names.STRIPPED_OPTIONS
    )


def test_lost_dash_in_armor(openssh_text: str) -> None:
    damaged = openssh_text.replace("-----BEGIN", "----BEGIN", 1).replace("KEY-----\n", "KEY----\n")
    assert damaged != openssh_text
    _private(damaged, openssh_text, names.FIXED_ARMOR)


def test_text_around_the_key(openssh_text: str, public_line: str) -> None:
    chatty = "Here is the deploy key:\n\n" + openssh_text + "\nThanks!\n"
    _private(chatty, openssh_text, names.IGNORED_SURROUNDING_TEXT)
    _public("the key:\n" + public_line, public_line, names.IGNORED_SURROUNDING_TEXT)


def test_byte_order_mark_and_zero_width_spaces(openssh_text: str, public_line: str) -> None:
    _private("\ufeff" + openssh_text, openssh_text, names.REMOVED_INVISIBLE)
    with_zwsp = public_line.replace(" ", "\u200b ", 1)
    _public(with_zwsp, public_line, names.REMOVED_INVISIBLE)
    _private(
        openssh_text.encode("utf-8-sig").decode("utf-8"), openssh_text, names.REMOVED_INVISIBLE
    )


def test_non_breaking_spaces(public_line: str) -> None:
    _public(public_line.replace(" ", "\u00a0"), public_line, names.REPLACED_NBSP)


def test_bytes_input(openssh_text: str, public_line: str) -> None:
    assert parse_private_key(openssh_text.encode()).key == parse_private_key(openssh_text).key
    assert parse_public_key(public_line.encode()).key == parse_public_key(public_line).key


def test_everything_at_once(pem_text: str) -> None:
    # Quoted, JSON-escaped, CRLF, indented and with the body on one line.
    lines = pem_text.strip().splitlines()
    messy = "\n".join([lines[0], "".join(lines[1:-1]), lines[-1]])
    messy = "  " + json.dumps(textwrap.indent(messy, "  ").replace("\n", "\r\n")) + "\n"
    parsed = parse_private_key(messy)
    assert parsed.key == parse_private_key(pem_text).key
    assert {names.REMOVED_QUOTES, names.UNESCAPED_NEWLINES, names.REWRAPPED_BODY} <= set(
        parsed.repairs
    )
    assert all(re.fullmatch(r"[\w /\\'.,-]+", name) for name in parsed.repairs)
