"""The host keys shipped with repolink: what bitbucket.org, github.com and gitlab.com publish.

Each pin is the full public key line and, beside it, the SHA256 fingerprint as printed on the
service's own documentation page, with that page's address and title. The test suite checks
that every key hashes to its documented fingerprint, so a typo in a key line cannot ship.

When a service rotates a key: update the line and the fingerprint from the service's page in
one change. Until a release carries it, operators run ``repolink hostkeys trust HOST
--fingerprint SHA256:… --force`` (which replaces the pins of that host, see
:func:`repolink.knownhosts.trust`).

Only port 22 of each host is pinned. The alternative endpoints on port 443
(``ssh.github.com``, ``altssh.gitlab.com``, ``altssh.bitbucket.org``) are not, because the
pages below do not publish keys for those names; trust them explicitly if you use them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShippedPin:
    """One published host key: ``key_line`` is ``type base64``."""

    host: str
    key_line: str
    documented_fingerprint: str
    source_url: str
    source_title: str
    port: int = 22


# -- github.com ----------------------------------------------------------------------------
# Keys and fingerprints: "GitHub's SSH key fingerprints",
# https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints
# (source of that page: github/docs, content/authentication/keeping-your-account-and-data-secure/
# githubs-ssh-key-fingerprints.md). The same three key lines are served by the "ssh_keys" field
# of https://api.github.com/meta ("Meta" REST API; announced in "GitHub's SSH host keys are now
# published in the API", https://github.blog/changelog/2022-01-18-githubs-ssh-host-keys-are-now-published-in-the-api).
# The RSA key is the one GitHub put in place on 2023-03-24 ("We updated our RSA SSH host key",
# https://github.blog/2023-03-23-we-updated-our-rsa-ssh-host-key/).
_GITHUB_URL = (
    "https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/"
    "githubs-ssh-key-fingerprints"
)
_GITHUB_TITLE = "GitHub's SSH key fingerprints"

# -- gitlab.com ----------------------------------------------------------------------------
# Fingerprints: section "SSH host keys fingerprints", key lines: section "SSH known_hosts
# entries" of "GitLab.com settings", https://docs.gitlab.com/ee/user/gitlab_com/
# (source of that page: gitlab-org/gitlab, doc/user/gitlab_com/index.md).
_GITLAB_URL = "https://docs.gitlab.com/ee/user/gitlab_com/#ssh-host-keys-fingerprints"
_GITLAB_TITLE = "GitLab.com settings — SSH host keys fingerprints / SSH known_hosts entries"

# -- bitbucket.org -------------------------------------------------------------------------
# Fingerprints: section "SSH Host Keys" of "Configure SSH and two-step verification",
# https://support.atlassian.com/bitbucket-cloud/docs/configure-ssh-and-two-step-verification/
# That page publishes fingerprints only and points to https://bitbucket.org/site/ssh for the
# known_hosts lines. The ECDSA and Ed25519 lines are printed in full in Bitbucket's
# announcement "ACTION REQUIRED: Update your Bitbucket Cloud SSH Host Keys",
# https://bitbucket.org/blog/ssh-host-key-changes (2023-05-15). For the RSA key (in place
# since 2023-06-20) no Atlassian page at hand prints the full line: it was taken from
# published known_hosts files that copy https://bitbucket.org/site/ssh, and it rests on the
# fingerprint the page above documents — the tests check it against that fingerprint, and a
# SHA256 match is what identifies a key.
_BITBUCKET_URL = (
    "https://support.atlassian.com/bitbucket-cloud/docs/configure-ssh-and-two-step-verification/"
)
_BITBUCKET_TITLE = "Configure SSH and two-step verification — SSH Host Keys"

SHIPPED_PINS: tuple[ShippedPin, ...] = (
    ShippedPin(
        "bitbucket.org",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO",
        "SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM",
        _BITBUCKET_URL,
        _BITBUCKET_TITLE,
    ),
    ShippedPin(
        "bitbucket.org",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4"
        "+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE=",
        "SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0",
        _BITBUCKET_URL,
        _BITBUCKET_TITLE,
    ),
    ShippedPin(
        "bitbucket.org",
        "ssh-rsa "
        "AAAAB3NzaC1yc2EAAAADAQABAAABgQDQeJzhupRu0u0cdegZIa8e86EG2qOCsIsD1Xw0xSeiPDlCr7kq97NLmMbp"
        "KTX6Esc30NuoqEEHCuc7yWtwp8dI76EEEB1VqY9QJq6vk+aySyboD5QF61I/1WeTwu+deCbgKMGbUijeXhtfbxSx"
        "m6JwGrXrhBdofTsbKRUsrN1WoNgUa8uqN1Vx6WAJw1JHPhglEGGHea6QICwJOAr/6mrui/oB7pkaWKHj3z7d1IC4"
        "KWLtY47elvjbaTlkN04Kc/5LFEirorGYVbt15kAUlqGM65pk6ZBxtaO3+30LVlORZkxOh+LKL/BvbZ/iRNhItLqN"
        "yieoQj/uh/7Iv4uyH/cV/0b4WDSd3DptigWq84lJubb9t/DnZlrJazxyDCulTmKdOR7vs9gMTo+uoIrPSb8ScTtv"
        "w65+odKAlBj59dhnVp9zd7QUojOpXlL62Aw56U4oO+FALuevvMjiWeavKhJqlR7i5n9srYcrNV7ttmDw7kf/97P5"
        "zauIhxcjX+xHv4M=",
        "SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E",
        _BITBUCKET_URL,
        _BITBUCKET_TITLE,
    ),
    ShippedPin(
        "github.com",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
        _GITHUB_URL,
        _GITHUB_TITLE,
    ),
    ShippedPin(
        "github.com",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxk"
        "ZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
        "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
        _GITHUB_URL,
        _GITHUB_TITLE,
    ),
    ShippedPin(
        "github.com",
        "ssh-rsa "
        "AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnG"
        "LVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/h"
        "WCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8C"
        "SSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FN"
        "yeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4k"
        "qx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5"
        "hpQs+p1vN1/wsjk=",
        "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
        _GITHUB_URL,
        _GITHUB_TITLE,
    ),
    ShippedPin(
        "gitlab.com",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
        "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
        _GITLAB_URL,
        _GITLAB_TITLE,
    ),
    ShippedPin(
        "gitlab.com",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4k"
        "WitGjeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY=",
        "SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw",
        _GITLAB_URL,
        _GITLAB_TITLE,
    ),
    ShippedPin(
        "gitlab.com",
        "ssh-rsa "
        "AAAAB3NzaC1yc2EAAAADAQABAAABAQCsj2bNKTBSpIYDEGk9KxsGh3mySTRgMtXL583qmBpzeQ+jqCMRgBqB98u3"
        "z++J1sKlXHWfM9dyhSevkMwSbhoR8XIq/U0tCNyokEi/ueaBMCvbcTHhO7FcwzY92WK4Yt0aGROY5qX2UKSeOvuP"
        "4D6TPqKF1onrSzH9bx9XUf2lEdWT/ia1NEKjunUqu1xOB/StKDHMoX4/OKyIzuS0q/T1zOATthvasJFoPrAjkohT"
        "yaDUz2LN5JoH839hViyEG82yB+MjcFV5MU3N1l1QL3cVUCh93xSaua1N85qivl+siMkPGbO5xR/En4iEY6K2XPAS"
        "UEMaieWVNTRCtJ4S8H+9",
        "SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ",
        _GITLAB_URL,
        _GITLAB_TITLE,
    ),
)


def pins_for(host: str, port: int) -> list[ShippedPin]:
    """The shipped pins of ``host:port`` (``host`` normalised, as the store keeps it)."""
    return [pin for pin in SHIPPED_PINS if pin.host == host and pin.port == port]


def pinned_hosts() -> list[tuple[str, int]]:
    """Every ``(host, port)`` with shipped pins, in order."""
    seen: dict[tuple[str, int], None] = {}
    for pin in SHIPPED_PINS:
        seen.setdefault((pin.host, pin.port), None)
    return list(seen)
