"""Public keys: authorized_keys options, RFC 4716 headers, security-key (sk-) types."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from repolink.errors import KeyFormatError
from repolink.keys import PublicKey, fingerprint_md5, fingerprint_sha256, parse_public_key
from repolink.keys.repair import STRIPPED_OPTIONS


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _ed25519_line(comment: str = "") -> str:
    line = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{line} {comment}".strip()


def _sk_ed25519_blob() -> bytes:
    point = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return _string(b"sk-ssh-ed25519@openssh.com") + _string(point) + _string(b"ssh:")


def _sk_ecdsa_blob() -> bytes:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return (
        _string(b"sk-ecdsa-sha2-nistp256@openssh.com")
        + _string(b"nistp256")
        + _string(point)
        + _string(b"ssh:")
    )


@pytest.mark.parametrize(
    ("key_type", "make_blob"),
    [
        ("sk-ssh-ed25519@openssh.com", _sk_ed25519_blob),
        ("sk-ecdsa-sha2-nistp256@openssh.com", _sk_ecdsa_blob),
    ],
)
def test_security_key_types_parse_with_ssh_keygens_fingerprints(
    ssh_keygen: Any, tmp_path: Path, key_type: str, make_blob: Any
) -> None:
    blob = make_blob()
    line = f"{key_type} {base64.b64encode(blob).decode()} yubikey@desk"
    pub = tmp_path / "sk.pub"
    pub.write_text(line + "\n")

    parsed = parse_public_key(line)

    assert parsed.key.key_type == key_type
    assert parsed.key.bits == 256
    assert parsed.key.comment == "yubikey@desk"
    assert parsed.key.blob == blob
    sha_fields = ssh_keygen("-l", "-E", "sha256", "-f", str(pub)).stdout.split()
    md5_fields = ssh_keygen("-l", "-E", "md5", "-f", str(pub)).stdout.split()
    assert parsed.key.sha256_fingerprint == sha_fields[1]
    assert parsed.key.md5_fingerprint == md5_fields[1]
    assert parsed.key.openssh_line() == line


@pytest.mark.parametrize(
    "options",
    [
        "no-pty",
        'command="/usr/bin/git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"",no-port-forwarding',
        'command="echo a, b ssh-rsa c",from="10.0.0.1,192.168.0.0/16",no-pty',
        'environment="NAME=two words",restrict',
    ],
)
def test_authorized_keys_options_are_stripped(options: str) -> None:
    key_line = _ed25519_line("deploy key")
    parsed = parse_public_key(f"{options} {key_line}")
    assert parsed.key == parse_public_key(key_line).key
    assert parsed.key.comment == "deploy key"
    assert parsed.repairs == (STRIPPED_OPTIONS,)


def test_authorized_keys_file_with_comments_and_one_key() -> None:
    key_line = _ed25519_line("me")
    text = f"# managed by hand\n\n{key_line}\n# end\n"
    parsed = parse_public_key(text)
    assert parsed.key.comment == "me"
    assert parsed.repairs == ()


def test_comment_keeps_inner_spaces() -> None:
    assert parse_public_key(_ed25519_line("Jane  Doe (laptop)")).key.comment == "Jane  Doe (laptop)"


def test_key_without_comment() -> None:
    assert parse_public_key(_ed25519_line()).key.comment == ""


def test_rfc4716_with_continued_header_and_other_headers() -> None:
    blob = base64.b64decode(_ed25519_line().split()[1])
    body = base64.b64encode(blob).decode()
    text = (
        "---- BEGIN SSH2 PUBLIC KEY ----\n"
        "Subject: jane\n"
        'Comment: "a comment long enough that it is \\\n'
        'continued on a second line"\n'
        "x-private-header: anything\n"
        f"{body[:40]}\n{body[40:]}\n"
        "---- END SSH2 PUBLIC KEY ----\n"
    )
    parsed = parse_public_key(text)
    assert parsed.key.blob == blob
    assert parsed.key.comment == "a comment long enough that it is continued on a second line"
    assert parsed.repairs == ()


def test_type_word_must_match_the_key_data() -> None:
    ed_line = _ed25519_line()
    with pytest.raises(KeyFormatError) as caught:
        parse_public_key("ssh-rsa " + ed_line.split()[1])
    assert caught.value.code == "key_type_mismatch"
    assert "ssh-ed25519" in caught.value.message  # names the type found, never the data


def test_public_key_equality_ignores_comment() -> None:
    line = _ed25519_line()
    first = parse_public_key(line + " one").key
    second = parse_public_key(line + " two").key
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse_public_key(_ed25519_line()).key


def test_from_blob_and_fingerprint_helpers_agree() -> None:
    blob = _sk_ed25519_blob()
    key = PublicKey.from_blob(blob, "c")
    assert key.sha256_fingerprint == fingerprint_sha256(blob)
    assert key.md5_fingerprint == fingerprint_md5(blob)
    assert key.sha256_fingerprint.startswith("SHA256:")
    assert "=" not in key.sha256_fingerprint
    assert len(key.md5_fingerprint.split(":")) == 17


def test_public_key_repr_is_short() -> None:
    key = parse_public_key(_ed25519_line("c")).key
    assert base64.b64encode(key.blob).decode() not in repr(key)
    assert key.sha256_fingerprint in repr(key)
