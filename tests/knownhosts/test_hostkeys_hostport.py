"""HOST[:PORT] parsing and naming, and fingerprint parsing."""

from __future__ import annotations

import pytest

from repolink.errors import ValidationError
from repolink.knownhosts import display_name, known_hosts_name, parse_host_port
from repolink.knownhosts import parse_sha256_fingerprint as parse_fp

FP = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("github.com", ("github.com", 22)),
        ("GitHub.COM", ("github.com", 22)),
        ("git.example.com:2222", ("git.example.com", 2222)),
        ("  host_1.internal:22 ", ("host_1.internal", 22)),
        ("127.0.0.1:2200", ("127.0.0.1", 2200)),
        ("[::1]:2222", ("::1", 2222)),
        ("[::1]", ("::1", 22)),
        ("::1", ("::1", 22)),
        ("[2001:DB8:0:0::1]:443", ("2001:db8::1", 443)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "host_invalid"),
        ("-oProxyCommand=evil", "host_invalid"),
        ("host name", "host_invalid"),
        ("[::1", "host_invalid"),
        ("[::1]x", "host_invalid"),
        ("[nothex]:22", "host_invalid"),
        ("[fe80::1%eth0]:22", "host_invalid"),
        ("host:", "port_invalid"),
        ("host:0", "port_invalid"),
        ("host:65536", "port_invalid"),
        ("host:22x", "port_invalid"),
        ("[::1]:abc", "port_invalid"),
    ],
)
def test_parse_host_port_refuses(text: str, code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_host_port(text)
    assert caught.value.code == code
    assert caught.value.hint


def test_bad_host_that_may_be_pasted_material_is_not_echoed() -> None:
    pasted = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
    with pytest.raises(ValidationError) as caught:
        parse_host_port(pasted)
    assert "b3BlbnNz" not in caught.value.message
    assert "BEGIN" not in caught.value.message


@pytest.mark.parametrize(
    ("host", "port", "known", "shown"),
    [
        ("github.com", 22, "github.com", "github.com"),
        ("git.example.com", 2222, "[git.example.com]:2222", "git.example.com:2222"),
        ("::1", 22, "::1", "[::1]"),
        ("::1", 2222, "[::1]:2222", "[::1]:2222"),
    ],
)
def test_names(host: str, port: int, known: str, shown: str) -> None:
    assert known_hosts_name(host, port) == known
    assert display_name(host, port) == shown
    assert parse_host_port(shown) == (host, port)


@pytest.mark.parametrize(
    "text",
    [
        FP,
        FP.removeprefix("SHA256:"),
        "sha256:" + FP.removeprefix("SHA256:"),
        f"  {FP}.  ",  # as ssh prints it in its "REMOTE HOST IDENTIFICATION HAS CHANGED" text
    ],
)
def test_fingerprint_spellings(text: str) -> None:
    assert parse_fp(text) == FP


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SHA256:short",
        FP + "A",
        "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
        "16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    ],
)
def test_fingerprint_refused_without_echo(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_fp(text)
    assert caught.value.code == "fingerprint_invalid"
    if len(text) > 10:
        assert text.strip() not in caught.value.message
