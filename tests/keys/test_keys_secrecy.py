"""Private key material never shows in a repr, a str, an error, a traceback or a log line."""

from __future__ import annotations

import copy
import logging
import pickle
import traceback
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from repolink.errors import RepolinkError
from repolink.keys import PrivateKey, parse_key, parse_private_key, parse_public_key

PASS = b"secrecy pass"


def _crypto_keys() -> dict[str, object]:
    return {
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "rsa": rsa.generate_private_key(65537, 2048),
        "ecdsa": ec.generate_private_key(ec.SECP384R1()),
    }


@pytest.fixture(scope="module", params=["ed25519", "rsa", "ecdsa"])
def key_files(request: pytest.FixtureRequest) -> dict[str, str]:
    crypto_key = _crypto_keys()[request.param]
    key = PrivateKey(crypto_key)  # type: ignore[arg-type]
    encryption = serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(1).build(PASS)
    files = {
        "openssh": key.to_openssh().decode(),
        "openssh-encrypted": crypto_key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
        ).decode(),
    }
    if request.param != "ed25519":
        files["pem"] = key.to_pem().decode()
        files["pkcs8-encrypted"] = crypto_key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASS),
        ).decode()
    return files


def _secrets(text: str) -> list[str]:
    lines = [line for line in text.splitlines()[1:-1] if line and ":" not in line]
    assert lines
    return lines


def _assert_hidden(shown: str, text: str) -> None:
    for line in _secrets(text):
        assert line not in shown
        assert line[:24] not in shown


def test_private_key_text_forms_hide_the_key(key_files: dict[str, str]) -> None:
    for name, text in key_files.items():
        parsed = parse_private_key(text, PASS if "encrypted" in name else None)
        key = parsed.key
        for shown in (repr(key), str(key), f"{key}", f"{key!r}", repr(parsed), str(parsed)):
            _assert_hidden(shown, text)
            assert key.public_key.sha256_fingerprint in shown
        numbers = _private_numbers(key)
        assert all(number not in repr(parsed) for number in numbers)


def _private_numbers(key: PrivateKey) -> list[str]:
    crypto_key = key.crypto_key
    if isinstance(crypto_key, rsa.RSAPrivateKey):
        value = crypto_key.private_numbers().d
    elif isinstance(crypto_key, ec.EllipticCurvePrivateKey):
        value = crypto_key.private_numbers().private_value
    else:
        raw = crypto_key.private_bytes_raw()
        return [raw.hex(), repr(raw)[2:30]]
    return [str(value)[:30], f"{value:x}"[:30]]


def test_private_key_cannot_be_pickled_but_copies_are_harmless(key_files: dict[str, str]) -> None:
    key = parse_private_key(key_files["openssh"]).key
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert copy.deepcopy(key) is key
    assert copy.copy(key) is key
    with pytest.raises(AttributeError):
        key.comment = "changed"  # type: ignore[misc]
    assert not hasattr(key, "__dict__")


def _break(text: str, how: str) -> str:
    lines = text.strip().splitlines()
    if how == "truncate":
        return "\n".join(lines[: len(lines) // 2] + lines[-1:])
    if how == "corrupt":
        middle = len(lines) // 2
        lines[middle] = lines[middle][:10] + "!" + lines[middle][11:]
        return "\n".join(lines)
    if how == "no-footer":
        return "\n".join(lines[:-1])
    if how == "no-header":
        return "\n".join(lines[1:])
    raise AssertionError(how)


FAILURES: list[tuple[str, Callable[[str], object]]] = [
    ("as-public", lambda text: parse_public_key(text)),
    ("truncate", lambda text: parse_private_key(_break(text, "truncate"), PASS)),
    ("corrupt", lambda text: parse_private_key(_break(text, "corrupt"), PASS)),
    ("no-footer", lambda text: parse_key(_break(text, "no-footer"))),
    ("no-header", lambda text: parse_private_key(_break(text, "no-header"))),
    ("wrong-passphrase", lambda text: parse_private_key(text, b"not it")),
    ("no-passphrase", lambda text: parse_private_key(text)),
]


@pytest.mark.parametrize(("how", "attempt"), FAILURES, ids=[name for name, _ in FAILURES])
def test_errors_about_a_private_key_hide_it(
    key_files: dict[str, str],
    how: str,
    attempt: Callable[[str], object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name, text in key_files.items():
        if how in ("wrong-passphrase", "no-passphrase") and "encrypted" not in name:
            continue
        with pytest.raises(RepolinkError) as caught:
            attempt(text)
        error = caught.value
        shown = "\n".join(
            [
                repr(error),
                str(error),
                error.one_line(),
                error.hint,
                repr(error.args),
                repr(error.__context__),
                "".join(traceback.format_exception(error)),
            ]
        )
        _assert_hidden(shown, text)
    _assert_hidden("\n".join(record.getMessage() for record in caplog.records), text)
