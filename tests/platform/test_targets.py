"""The network policy for repository URLs an API client gives: non-public hosts refused in
every spelling, names judged on what they resolve to, the server's own Git host allowed — when
given, and again at every connection, with ssh pinned to the address judged (real ssh against
the embedded host on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket

import pytest
from sqlalchemy import select

from repolink import knownhosts
from repolink.app import Repolink
from repolink.errors import RepolinkError, ValidationError
from repolink.git import keyscan
from repolink.knownhosts.service import check_trust, store_trust
from repolink.netpolicy import NetworkPolicy
from repolink.platform import probes, targets
from repolink.platform.fetch_jobs import TRANSIENT_CODES
from repolink.platform.targets import TargetPolicy
from repolink.store.models.platform import URL_FROM_CLIENT, RepositoryConnection
from repolink.urls import parse_ssh_url
from support.apikit import OWNER, platform_api
from support.platformkit import WORKSPACE, HostedRepos, Platform, granted_key
from support.recording import RecordingRunner

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


# -- at connection time: a client's URL judged again, ssh pinned to the address judged --------

REBOUND_NAME = "git.rebind.test"
P = "/projects/app"
api_over = contextlib.contextmanager(platform_api)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What ``REBOUND_NAME`` resolves to, changed by the test (every other name resolves as
    usual), through the seam the policy and the doctor resolve with (platform/probes.resolve)."""
    answers: dict[str, str] = {}
    real = probes.resolve

    def resolve(host: str, port: int, *, timeout: float) -> list[probes.Address]:
        if host in answers:
            return [probes.Address(socket.AF_INET, (answers[host], port))]
        return real(host, port, timeout=timeout)

    monkeypatch.setattr(probes, "resolve", resolve)
    monkeypatch.setattr(targets, "resolve", resolve)
    return answers


def _connect_through_api(platform: Platform, hosted: HostedRepos, url: str) -> None:
    with api_over(platform.app) as api:
        api.create("app")
        answer = api.ok(OWNER, "PUT", f"{P}/repository", json={"url": url, "generate": {}})
    public = answer["deploy_key"]["public_key"]
    hosted.host.service.add_access_key(WORKSPACE, "app", public, label="rebind")


def _strict(platform: Platform, runner: RecordingRunner) -> Repolink:
    """The same data directory once the operator allows no private network any more."""
    settings = platform.settings.model_copy(update={"allowed_networks": ""})
    return Repolink(settings, store=platform.store, runner=runner)


def _url_origin(platform: Platform) -> str | None:
    with platform.store.session() as session:
        return session.scalars(select(RepositoryConnection.url_origin)).one()


def _ssh_commands(runner: RecordingRunner) -> list[str]:
    return [run.env["GIT_SSH_COMMAND"] for run in runner.runs() if "GIT_SSH_COMMAND" in run.env]


def test_a_client_url_the_policy_refuses_by_now_starts_no_ssh(
    platform: Platform, hosted: HostedRepos
) -> None:
    _connect_through_api(platform, hosted, hosted.app.url())  # loopback allowed when given
    assert _url_origin(platform) == URL_FROM_CLIENT
    quiet = RecordingRunner()
    strict = _strict(platform, quiet)

    with pytest.raises(ValidationError) as refused:
        strict.fetches.fetch_project("app")
    report = strict.doctor.check_project("app")

    assert refused.value.code == "repository_url_forbidden"
    assert "loopback" in refused.value.message
    assert quiet.records == []  # neither ssh nor git, not even on the mirror
    info = strict.connections.connection_info("app")
    assert (info.state, info.error_code) == ("failed", "repository_url_forbidden")
    assert "repository_url_forbidden" not in TRANSIENT_CODES  # a fetch job does not retry it
    failure = report.failure
    assert failure is not None and (failure.name, failure.code) == (
        "dns",
        "repository_url_forbidden",
    )


def test_the_operators_own_url_is_not_checked(platform: Platform, hosted: HostedRepos) -> None:
    platform.connect("cli-app", hosted.app.url(), key=granted_key(hosted.host, "app", "cli"))
    assert _url_origin(platform) is None
    runner = RecordingRunner()

    fetched = _strict(platform, runner).fetches.fetch_project("cli-app")

    assert fetched.refs > 0 or fetched.skipped
    assert not any("HostName=" in command for command in _ssh_commands(runner))


def test_a_name_rebound_to_a_refused_address_is_refused_at_fetch_time(
    platform: Platform, hosted: HostedRepos, dns: dict[str, str]
) -> None:
    quiet = RecordingRunner()
    strict = _strict(platform, quiet)
    dns[REBOUND_NAME] = "8.8.8.8"  # public when the client gives the URL
    url = f"ssh://git@{REBOUND_NAME}:{hosted.host.port}/{WORKSPACE}/app.git"
    with api_over(strict) as api:
        api.create("app")
        api.ok(OWNER, "PUT", f"{P}/repository", json={"url": url, "generate": {}})
    dns[REBOUND_NAME] = "169.254.169.254"  # the metadata service when the fetch comes

    with pytest.raises(ValidationError) as refused:
        strict.fetches.fetch_project("app")

    assert refused.value.code == "repository_url_forbidden"
    assert "resolving to a link-local" in refused.value.message
    assert quiet.records == []


def test_ssh_connects_to_the_checked_address_and_verifies_the_name(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner, dns: dict[str, str]
) -> None:
    dns[REBOUND_NAME] = "127.0.0.1"
    port = hosted.host.port
    url = f"ssh://git@{REBOUND_NAME}:{port}/{WORKSPACE}/app.git"
    _connect_through_api(platform, hosted, url)
    recording.clear()

    # The address is trusted (platform.trust_host), the name not yet: no key for it.
    with pytest.raises(RepolinkError) as unknown:
        platform.fetch("app")
    assert unknown.value.code == "host_key_unknown"

    with platform.store.session() as session:
        scanned = keyscan.scanner_for(platform.settings, platform.runner)("127.0.0.1", port)
        for fingerprint in hosted.host.server.host_key_fingerprints:
            check = check_trust(session, REBOUND_NAME, port, fingerprint)
            store_trust(session, check, scanned)
    fetched = platform.fetch("app")

    assert fetched.new_commits == len(hosted.app.host_commits())
    commands = _ssh_commands(recording)
    assert commands and all(
        "HostName=127.0.0.1" in command and f"HostKeyAlias=[{REBOUND_NAME}]:{port}" in command
        for command in commands
    )
    with platform.store.session() as session:
        known = {key.host for key in knownhosts.trusted_keys(session, REBOUND_NAME, port)}
    assert known == {REBOUND_NAME}
