"""Generated keys: accepted by the real ssh-keygen, in every type, size and file format."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import repolink.keys.generate as generate_module
from repolink.errors import KeyFormatError, ValidationError
from repolink.keys import PrivateKey, generate_key, generate_key_async, parse_private_key

KINDS = [
    ("ed25519", 256),
    ("rsa", 2048),
    ("rsa", 3072),
    ("rsa", 4096),
    ("ecdsa", 256),
    ("ecdsa", 384),
    ("ecdsa", 521),
]
WIRE_TYPES = {
    "ed25519": "ssh-ed25519",
    "rsa": "ssh-rsa",
    "ecdsa256": "ecdsa-sha2-nistp256",
    "ecdsa384": "ecdsa-sha2-nistp384",
    "ecdsa521": "ecdsa-sha2-nistp521",
}
PASSPHRASE = b"generated pass"


@pytest.fixture(scope="session")
def generated() -> dict[tuple[str, int], PrivateKey]:
    """One key per type and size for the whole session (RSA 4096 takes a moment)."""
    return {(kind, bits): generate_key(kind, bits, f"{kind}{bits}@test") for kind, bits in KINDS}


def _write_private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)  # ssh-keygen refuses private key files others can read
    return path


@pytest.mark.parametrize(
    ("key_format", "passphrase"),
    [("openssh", None), ("openssh", PASSPHRASE), ("pem", None)],
    ids=["openssh", "openssh-passphrase", "pem"],
)
@pytest.mark.parametrize(("kind", "bits"), KINDS, ids=[f"{k}{b}" for k, b in KINDS])
def test_ssh_keygen_derives_our_public_key(
    generated: dict[tuple[str, int], PrivateKey],
    ssh_keygen: Any,
    tmp_path: Path,
    kind: str,
    bits: int,
    key_format: str,
    passphrase: bytes | None,
) -> None:
    key = generated[(kind, bits)]
    if key_format == "pem" and kind == "ed25519":
        with pytest.raises(KeyFormatError) as caught:
            key.to_pem()
        assert caught.value.code == "key_pem_unsupported"
        return
    data = key.to_openssh(passphrase) if key_format == "openssh" else key.to_pem()
    expected_header = {
        "openssh": b"-----BEGIN OPENSSH PRIVATE KEY-----",
        "pem": b"-----BEGIN RSA PRIVATE KEY-----"
        if kind == "rsa"
        else b"-----BEGIN EC PRIVATE KEY-----",
    }[key_format]
    assert data.startswith(expected_header)
    path = _write_private(tmp_path / "key", data)

    args = ["-y", "-f", str(path)]
    if passphrase:
        args[1:1] = ["-P", passphrase.decode()]
    derived = ssh_keygen(*args).stdout.strip()

    # An OpenSSH file holds the comment, as ssh-keygen's do; classic PEM has no room for one.
    assert derived == key.public_key.openssh_line(with_comment=key_format == "openssh")
    assert key.bits == bits
    assert key.key_type == WIRE_TYPES.get(kind, WIRE_TYPES.get(f"{kind}{bits}"))
    pub = tmp_path / "key.pub"
    pub.write_text(key.public_key.openssh_line() + "\n")
    fields = ssh_keygen("-l", "-E", "sha256", "-f", str(pub)).stdout.split()
    assert fields[:2] == [str(bits), key.public_key.sha256_fingerprint]
    assert fields[2] == f"{kind}{bits}@test"
    md5 = ssh_keygen("-l", "-E", "md5", "-f", str(pub)).stdout.split()[1]
    assert md5 == key.public_key.md5_fingerprint


@pytest.mark.parametrize(("kind", "bits"), KINDS, ids=[f"{k}{b}" for k, b in KINDS])
def test_generated_keys_round_trip_through_our_parser(
    generated: dict[tuple[str, int], PrivateKey], kind: str, bits: int
) -> None:
    key = generated[(kind, bits)]
    again = parse_private_key(key.to_openssh(PASSPHRASE), PASSPHRASE).key
    assert again == key
    assert again.public_key.sha256_fingerprint == key.public_key.sha256_fingerprint
    if kind != "ed25519":
        assert parse_private_key(key.to_pem()).key == key


def test_defaults() -> None:
    assert generate_key().key_type == "ssh-ed25519"
    assert generate_key("ecdsa").bits == 256
    assert generate_key("RSA").bits == 3072
    assert generate_key(comment="ci@build").public_key.comment == "ci@build"


def test_every_key_is_new() -> None:
    assert generate_key() != generate_key()


@pytest.mark.parametrize(
    ("key_type", "bits", "code"),
    [
        ("dsa", None, "key_unsupported_type"),
        ("ed448", None, "key_unsupported_type"),
        ("rsa", 1024, "key_bits_invalid"),
        ("rsa", 8192, "key_bits_invalid"),
        ("ecdsa", 224, "key_bits_invalid"),
        ("ed25519", 512, "key_bits_invalid"),
    ],
)
def test_refuses_unknown_types_and_sizes(key_type: str, bits: int | None, code: str) -> None:
    with pytest.raises((KeyFormatError, ValidationError)) as caught:
        generate_key(key_type, bits)
    assert caught.value.code == code
    assert caught.value.hint


def test_refuses_a_comment_that_would_break_the_key_line() -> None:
    with pytest.raises(ValidationError) as caught:
        generate_key(comment="two\nlines")
    assert caught.value.code == "key_comment_invalid"


def test_refuses_an_empty_passphrase() -> None:
    with pytest.raises(ValidationError) as caught:
        generate_key().to_openssh(b"")
    assert caught.value.code == "key_passphrase_empty"


def test_async_generation_runs_off_the_event_loop_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    original = generate_module.generate_key

    def recording(*args: Any) -> PrivateKey:
        threads.append(threading.get_ident())
        return original(*args)

    monkeypatch.setattr(generate_module, "generate_key", recording)

    async def main() -> tuple[PrivateKey, int]:
        key = await generate_key_async("rsa", 2048, "async@test")
        return key, threading.get_ident()

    key, loop_thread = asyncio.run(main())
    assert key.bits == 2048
    assert key.public_key.comment == "async@test"
    assert threads and threads[0] != loop_thread
