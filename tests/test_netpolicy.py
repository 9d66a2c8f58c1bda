"""The network policy: every spelling of a non-public address is refused unless allowed."""

from __future__ import annotations

import pytest

from repolink.errors import ValidationError
from repolink.netpolicy import NetworkPolicy, forwarded_client, host_address, parse_networks
from repolink.settings import Settings, load_settings

STRICT = NetworkPolicy()

# The addresses of issue 10 §3.5, and the other spellings of the same places.
REFUSED = [
    "169.254.169.254",
    "[::ffff:169.254.169.254]",
    "::ffff:a9fe:a9fe",
    "metadata.google.internal",
    "METADATA.google.internal.",
    "metadata",
    "instance-data",
    "10.0.0.1",
    "127.0.0.1",
    "2130706433",
    "0x7f.1",
    "0177.0.0.1",
    "127.1",
    "0x7f000001",
    "localhost",
    "api.localhost",
    "0.0.0.0",
    "0",
    "192.168.1.10",
    "172.16.5.4",
    "100.64.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[fe80::1]",
    "[fd00::1]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:7f00:1::]",
]
ACCEPTED = ["example.com", "ci.example", "93.184.216.34", "[2606:4700::1111]", "8.8.8.8"]


@pytest.mark.parametrize("host", REFUSED)
def test_non_public_hosts_are_refused_in_every_spelling(host: str) -> None:
    assert STRICT.host_refusal(host) is not None


@pytest.mark.parametrize("host", ACCEPTED)
def test_public_hosts_and_names_pass(host: str) -> None:
    assert STRICT.host_refusal(host) is None


def test_numeric_forms_read_as_libc_reads_them() -> None:
    assert str(host_address("2130706433")) == "127.0.0.1"
    assert str(host_address("0x7f.1")) == "127.0.0.1"
    assert str(host_address("0177.0.0.1")) == "127.0.0.1"
    assert host_address("example.com") is None
    assert host_address("08.1.1.1") is None  # not a number to libc: a name, resolved later


def test_the_refusal_names_the_kind_of_address() -> None:
    assert STRICT.host_refusal("127.0.0.1") == "a loopback address"
    assert "link-local" in (STRICT.host_refusal("[::ffff:169.254.169.254]") or "")
    assert STRICT.host_refusal("10.0.0.1") == "a private address"
    assert STRICT.host_refusal("metadata.google.internal") == "a cloud metadata name"


def test_allowed_networks_let_their_addresses_through_and_only_those() -> None:
    policy = NetworkPolicy(parse_networks("127.0.0.0/8, 10.1.0.0/16"))
    for host in ("127.0.0.1", "2130706433", "[::ffff:127.0.0.1]", "localhost", "10.1.2.3"):
        assert policy.host_refusal(host) is None, host
    for host in ("10.2.0.1", "169.254.169.254", "metadata.google.internal", "[::1]"):
        assert policy.host_refusal(host) is not None, host


def test_the_setting_takes_cidrs_and_refuses_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(allowed_networks=" 10.0.0.0/8 ,::1")
    assert settings.allowed_networks == "10.0.0.0/8,::1/128"
    assert settings.network_policy.host_refusal("10.9.9.9") is None
    assert Settings(allowed_networks="").network_policy.host_refusal("10.9.9.9") is not None
    monkeypatch.setenv("REPOLINK_ALLOWED_NETWORKS", "10.0.0.0/8,not-a-network")
    with pytest.raises(ValidationError) as refused:
        load_settings()
    assert refused.value.code == "settings_invalid"
    assert "REPOLINK_ALLOWED_NETWORKS" in refused.value.message


PROXIES = parse_networks("10.0.0.5, 10.1.0.0/16, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        # Not from a trusted proxy: the peer, whatever the header says.
        ("198.51.100.7", ["203.0.113.9"], "198.51.100.7"),
        ("testclient", ["203.0.113.9"], "testclient"),
        # From a trusted proxy: the address it appended.
        ("10.0.0.5", ["203.0.113.9"], "203.0.113.9"),
        ("::ffff:10.0.0.5", ["203.0.113.9"], "203.0.113.9"),
        # A forged entry left of what the proxy appended is not read.
        ("10.0.0.5", ["1.2.3.4, 203.0.113.9"], "203.0.113.9"),
        # A chain of trusted proxies is walked through, several headers in order.
        ("10.0.0.5", ["1.2.3.4, 203.0.113.9", "10.1.2.3"], "203.0.113.9"),
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
        # Nothing usable: the nearest trusted hop.
        ("10.0.0.5", [], "10.0.0.5"),
        ("10.0.0.5", ["not-an-address"], "10.0.0.5"),
        ("10.0.0.5", ["203.0.113.9:443"], "10.0.0.5"),
        ("10.0.0.5", ["203.0.113.9, garbage, 10.1.0.9"], "10.1.0.9"),
        ("10.0.0.5", ["10.1.0.1, 10.1.0.2"], "10.1.0.1"),
    ],
)
def test_the_client_is_read_from_forwarded_for_only_behind_a_trusted_proxy(
    peer: str, header: list[str], client: str
) -> None:
    assert forwarded_client(peer, header, PROXIES) == client
    assert forwarded_client(peer, header, ()) == peer


def test_trusted_proxies_is_a_setting_of_networks() -> None:
    settings = Settings(trusted_proxies=" 10.0.0.5 , fd00::/8")
    assert settings.trusted_proxies == "10.0.0.5/32,fd00::/8"
    assert [str(n) for n in settings.trusted_proxy_networks] == ["10.0.0.5/32", "fd00::/8"]
    with pytest.raises(ValidationError, match="REPOLINK_TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/99")
