"""The network policy for repository URLs an API client gives: non-public hosts refused in
every spelling, names judged on what they resolve to, the server's own Git host allowed."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from repolink.errors import ValidationError
from repolink.netpolicy import NetworkPolicy
from repolink.platform.targets import TargetPolicy
from repolink.urls import parse_ssh_url

STRICT = TargetPolicy(NetworkPolicy())


@pytest.mark.parametrize(
    "url",
    [
        "ssh://git@127.0.0.1:2222/team/app.git",
        "git@localhost:team/app.git",
        "ssh://git@[::1]/team/app.git",
        "ssh://git@[::ffff:10.0.0.5]/team/app.git",
        "git@10.1.2.3:team/app.git",
        "git@169.254.169.254:team/app.git",
        "git@metadata.google.internal:team/app.git",
        "ssh://git@2130706433/team/app.git",
    ],
)
def test_non_public_targets_are_refused_with_the_setting_to_change(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        STRICT.check(parse_ssh_url(url))

    assert refused.value.code == "repository_url_forbidden"
    assert "REPOLINK_ALLOWED_NETWORKS" in refused.value.hint


def test_a_name_is_judged_on_the_addresses_it_resolves_to() -> None:
    # This machine's own name resolves to one of its own addresses (a loopback one in most
    # containers, a private one on most hosts): never a public one to reach on a client's behalf.
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 22)}
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if not any(NetworkPolicy().address_refusal(ipaddress.ip_address(a)) for a in addresses):
        pytest.skip(f"this machine's name {name!r} resolves to public addresses only")

    with pytest.raises(ValidationError) as refused:
        STRICT.check(parse_ssh_url(f"git@{name}:team/app.git"))
    assert refused.value.code == "repository_url_forbidden"
    assert "resolving to" in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "git@bitbucket.invalid:team/app.git",  # unresolvable: the fetch names the DNS failure
        "ssh://git@8.8.8.8/team/app.git",
    ],
)
def test_public_and_unresolvable_targets_pass(url: str) -> None:
    STRICT.check(parse_ssh_url(url))


def test_allowed_networks_let_their_addresses_through() -> None:
    allowing = TargetPolicy(NetworkPolicy.from_text("10.0.0.0/8"))

    allowing.check(parse_ssh_url("git@10.1.2.3:team/app.git"))
    with pytest.raises(ValidationError):
        allowing.check(parse_ssh_url("git@192.168.1.1:team/app.git"))


@pytest.mark.parametrize(
    ("own", "url", "allowed"),
    [
        (("127.0.0.1", 2222), "ssh://git@127.0.0.1:2222/team/app.git", True),
        (("127.0.0.1", 2222), "ssh://git@localhost:2222/team/app.git", True),
        (("0.0.0.0", 2222), "ssh://git@127.0.0.1:2222/team/app.git", True),
        (("git.internal", 2222), "ssh://git@GIT.internal:2222/team/app.git", True),
        # The same host on another port is somebody else's server.
        (("127.0.0.1", 2222), "ssh://git@127.0.0.1:22/team/app.git", False),
        (("127.0.0.1", 2222), "ssh://git@10.0.0.1:2222/team/app.git", False),
    ],
)
def test_the_servers_own_git_host_is_always_allowed(
    own: tuple[str, int], url: str, allowed: bool
) -> None:
    policy = TargetPolicy(NetworkPolicy(), own_hosts=[own])
    if allowed:
        policy.check(parse_ssh_url(url))
    else:
        with pytest.raises(ValidationError):
            policy.check(parse_ssh_url(url))
