"""The shipped pins are exactly the keys the services document."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repolink.knownhosts.pins import SHIPPED_PINS, ShippedPin, pinned_hosts, pins_for
from repolink.knownhosts.values import host_key_from_line, stored_host_key

# The fingerprints as printed on each service's page, copied here independently of pins.py,
# so that an edit to a pin has to agree with the documentation twice.
DOCUMENTED = {
    # "GitHub's SSH key fingerprints",
    # https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints
    "github.com": {
        "ssh-rsa": "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
        "ecdsa-sha2-nistp256": "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
        "ssh-ed25519": "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
    },
    # "GitLab.com settings" § SSH host keys fingerprints,
    # https://docs.gitlab.com/ee/user/gitlab_com/#ssh-host-keys-fingerprints
    "gitlab.com": {
        "ssh-ed25519": "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
        "ssh-rsa": "SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ",
        "ecdsa-sha2-nistp256": "SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw",
    },
    # "Configure SSH and two-step verification" § SSH Host Keys,
    # https://support.atlassian.com/bitbucket-cloud/docs/configure-ssh-and-two-step-verification/
    "bitbucket.org": {
        "ecdsa-sha2-nistp256": "SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0",
        "ssh-ed25519": "SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM",
        "ssh-rsa": "SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E",
    },
}


def _pin_id(pin: ShippedPin) -> str:
    return f"{pin.host}-{pin.key_line.split()[0]}"


@pytest.mark.parametrize("pin", SHIPPED_PINS, ids=_pin_id)
def test_each_pin_hashes_to_the_documented_fingerprint(pin: ShippedPin) -> None:
    key = host_key_from_line(pin.key_line)
    assert key.sha256_fingerprint == pin.documented_fingerprint
    assert DOCUMENTED[pin.host][key.key_type] == pin.documented_fingerprint
    # A pin is read back unchecked when hosts are trusted (stored_host_key): it is the same key.
    stored = stored_host_key(pin.key_line)
    assert stored == key and stored.openssh_line(with_comment=False) == pin.key_line


def test_every_documented_key_is_pinned_on_port_22_and_nothing_else() -> None:
    pinned = {
        (pin.host, pin.port, host_key_from_line(pin.key_line).key_type, pin.documented_fingerprint)
        for pin in SHIPPED_PINS
    }
    documented = {
        (host, 22, key_type, fingerprint)
        for host, keys in DOCUMENTED.items()
        for key_type, fingerprint in keys.items()
    }
    assert pinned == documented
    assert sorted(pinned_hosts()) == [("bitbucket.org", 22), ("github.com", 22), ("gitlab.com", 22)]


def test_pins_agree_with_ssh_keygen(tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(f"{pin.host} {pin.key_line}\n" for pin in SHIPPED_PINS))
    listing = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    printed = {(line.split()[2], line.split()[1]) for line in listing}
    assert printed == {(pin.host, pin.documented_fingerprint) for pin in SHIPPED_PINS}


@pytest.mark.parametrize("pin", SHIPPED_PINS, ids=_pin_id)
def test_each_pin_cites_the_documentation_of_its_own_service(pin: ShippedPin) -> None:
    expected_site = {
        "github.com": "https://docs.github.com/",
        "gitlab.com": "https://docs.gitlab.com/",
        "bitbucket.org": "https://support.atlassian.com/bitbucket-cloud/",
    }[pin.host]
    assert pin.source_url.startswith(expected_site)
    assert pin.source_title


def test_pins_for_matches_host_and_port_exactly() -> None:
    assert len(pins_for("github.com", 22)) == 3
    assert pins_for("github.com", 443) == []
    assert pins_for("ssh.github.com", 22) == []
