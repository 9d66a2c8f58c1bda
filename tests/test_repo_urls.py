"""Which repository a URL names, in every spelling a webhook payload or a connection uses."""

from __future__ import annotations

import pytest

from repolink.repo_urls import RepositoryAddress, path_address, repository_address


def address(text: str) -> RepositoryAddress:
    found = repository_address(text)
    assert found is not None, text
    return found


@pytest.mark.parametrize(
    "spelling",
    [
        "git@github.com:Team/App.git",
        "ssh://git@github.com/team/app",
        "ssh://github.com:22/team/app.git",
        "git@github.com:/team/app.git/",
        "https://github.com/team/app",
        "https://github.com/team/app.git",
        "http://github.com:8080/team/app.git",
        "git://github.com/team/app.git",
        "https://user@GitHub.com/team/app/",
    ],
)
def test_every_spelling_of_one_repository_matches(spelling: str) -> None:
    connection = address("git@github.com:team/app.git")
    assert address(spelling).matches(connection)
    assert connection.matches(address(spelling))


@pytest.mark.parametrize(
    "other",
    [
        "git@github.com:team/other.git",
        "git@gitlab.com:team/app.git",
        "https://github.com/team/app/extra",
        "https://github.com/team",
        "ssh://git@github.com:2222/team/app.git",
    ],
)
def test_another_repository_does_not_match(other: str) -> None:
    assert not address(other).matches(address("git@github.com:team/app.git"))


def test_ssh_ports_are_compared_only_between_ssh_urls() -> None:
    hosted = address("ssh://git@127.0.0.1:2222/team/app.git")
    assert hosted.matches(address("ssh://git@127.0.0.1:2222/team/app"))
    assert not hosted.matches(address("ssh://git@127.0.0.1:2223/team/app.git"))
    # A web URL's port is the web server's; it says nothing of the SSH port.
    assert hosted.matches(address("http://127.0.0.1:8080/team/app"))


def test_a_bare_path_matches_that_path_on_any_host() -> None:
    bare = path_address("Team/App")
    assert bare is not None
    assert bare.matches(address("git@bitbucket.org:team/app.git"))
    assert bare.matches(address("ssh://git@127.0.0.1:2222/team/app.git"))
    assert not bare.matches(address("git@bitbucket.org:team/other.git"))


def test_ipv6_hosts_compare_in_one_form() -> None:
    ssh = address("ssh://git@[2001:db8:0::1]:2222/team/app.git")
    assert ssh.host == "2001:db8::1"
    assert ssh.matches(address("https://[2001:DB8::1]/team/app"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not a url",
        "file:///srv/git/app.git",
        "https://",
        "https://github.com/",
        "https://github.com/.git",
        "https://github.com/team/../app",
        "https://[not-ipv6/team/app",
        "ext::sh -c evil",
        "-oProxyCommand=evil:team/app",
        "x" * 5000,
    ],
)
def test_text_that_names_no_repository_gives_none(text: str) -> None:
    assert repository_address(text) is None


def test_a_path_with_nothing_in_it_gives_none() -> None:
    assert path_address("") is None
    assert path_address("/./") is None
