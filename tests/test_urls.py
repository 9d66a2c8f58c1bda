from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repolink.errors import URLError
from repolink.urls import SSHURL, parse_ssh_url

# -- accepted forms ---------------------------------------------------------------------------

# text, user, host, port, path, canonical, git_url, known_hosts_name, repo_name
ACCEPTED = [
    (
        "git@bitbucket.org:team/repo.git",
        "git",
        "bitbucket.org",
        None,
        "team/repo.git",
        "ssh://git@bitbucket.org/team/repo",
        "ssh://git@bitbucket.org/team/repo.git",
        "bitbucket.org",
        "repo",
    ),
    (
        "ssh://git@github.com/owner/repo.git",
        "git",
        "github.com",
        None,
        "owner/repo.git",
        "ssh://git@github.com/owner/repo",
        "ssh://git@github.com/owner/repo.git",
        "github.com",
        "repo",
    ),
    (
        "ssh://git@Git.Example.COM:2222/ws/repo.git",
        "git",
        "git.example.com",
        2222,
        "ws/repo.git",
        "ssh://git@git.example.com:2222/ws/repo",
        "ssh://git@git.example.com:2222/ws/repo.git",
        "[git.example.com]:2222",
        "repo",
    ),
    (
        "git+ssh://git@host/a/b",
        "git",
        "host",
        None,
        "a/b",
        "ssh://git@host/a/b",
        "ssh://git@host/a/b",
        "host",
        "b",
    ),
    (
        "ssh+git://git@host:22/a/b.git/",
        "git",
        "host",
        None,
        "a/b.git/",
        "ssh://git@host/a/b",
        "ssh://git@host/a/b.git/",
        "host",
        "b",
    ),
    (
        "ssh://git@[::1]:2222/ws/repo.git",
        "git",
        "::1",
        2222,
        "ws/repo.git",
        "ssh://git@[::1]:2222/ws/repo",
        "ssh://git@[::1]:2222/ws/repo.git",
        "[::1]:2222",
        "repo",
    ),
    (
        "git@[2001:DB8:0::1]:owner/repo.git",
        "git",
        "2001:db8::1",
        None,
        "owner/repo.git",
        "ssh://git@[2001:db8::1]/owner/repo",
        "ssh://git@[2001:db8::1]/owner/repo.git",
        "2001:db8::1",
        "repo",
    ),
    (
        "[::1]:repo",
        None,
        "::1",
        None,
        "repo",
        "ssh://[::1]/repo",
        "ssh://[::1]/repo",
        "::1",
        "repo",
    ),
    (
        "host:~/repo.git",
        None,
        "host",
        None,
        "~/repo.git",
        "ssh://host/~/repo",
        "ssh://host/~/repo.git",
        "host",
        "repo",
    ),
    (
        "git@host:~alice/repo.git",
        "git",
        "host",
        None,
        "~alice/repo.git",
        "ssh://git@host/~alice/repo",
        "ssh://git@host/~alice/repo.git",
        "host",
        "repo",
    ),
    (
        "ssh://alice@host/~alice/repo.git",
        "alice",
        "host",
        None,
        "~alice/repo.git",
        "ssh://alice@host/~alice/repo",
        "ssh://alice@host/~alice/repo.git",
        "host",
        "repo",
    ),
    (
        "  git@gitlab.com:group/sub/repo.git \n",
        "git",
        "gitlab.com",
        None,
        "group/sub/repo.git",
        "ssh://git@gitlab.com/group/sub/repo",
        "ssh://git@gitlab.com/group/sub/repo.git",
        "gitlab.com",
        "repo",
    ),
    (
        "org-1@ssh.dev.azure.com:v3/org/proj/repo",
        "org-1",
        "ssh.dev.azure.com",
        None,
        "v3/org/proj/repo",
        "ssh://org-1@ssh.dev.azure.com/v3/org/proj/repo",
        "ssh://org-1@ssh.dev.azure.com/v3/org/proj/repo",
        "ssh.dev.azure.com",
        "repo",
    ),
    (
        "ssh://host/100%25/repo",
        None,
        "host",
        None,
        "100%/repo",
        "ssh://host/100%25/repo",
        "ssh://host/100%25/repo",
        "host",
        "repo",
    ),
    (
        "SSH://git@127.0.0.1:2200/srv/git/repo.git",
        "git",
        "127.0.0.1",
        2200,
        "srv/git/repo.git",
        "ssh://git@127.0.0.1:2200/srv/git/repo",
        "ssh://git@127.0.0.1:2200/srv/git/repo.git",
        "[127.0.0.1]:2200",
        "repo",
    ),
]


@pytest.mark.parametrize(
    (
        "text",
        "user",
        "host",
        "port",
        "path",
        "canonical",
        "git_url",
        "known_hosts_name",
        "repo_name",
    ),
    ACCEPTED,
)
def test_accepted_forms(
    text: str,
    user: str | None,
    host: str,
    port: int | None,
    path: str,
    canonical: str,
    git_url: str,
    known_hosts_name: str,
    repo_name: str,
) -> None:
    url = parse_ssh_url(text)
    assert (url.user, url.host, url.port, url.path) == (user, host, port, path)
    assert url.original == text.strip()
    assert url.canonical == canonical
    assert url.git_url == git_url
    assert url.known_hosts_name == known_hosts_name
    assert url.repo_name == repo_name
    assert url.host_port == (host, port or 22)


@pytest.mark.parametrize(
    "spellings",
    [
        [
            "git@bitbucket.org:team/repo.git",
            "ssh://git@bitbucket.org/team/repo",
            "ssh://git@bitbucket.org:22/team/repo.git/",
            "git@BITBUCKET.ORG:/team/repo",
            "git+ssh://git@bitbucket.org//team//./repo.git",
            "ssh://git@bitbucket.org/team/repo/.git",
            "ssh://git@bitbucket.org/%74eam/repo",
        ],
        ["ssh://git@[::1]:2222/ws/repo.git", "ssh://git@[0:0::0001]:2222/ws/repo"],
        ["git@host:~/repo.git", "ssh://git@host/~/repo", "ssh://git@host:22/%7E/repo.git"],
    ],
)
def test_every_spelling_of_one_repository_compares_equal(spellings: list[str]) -> None:
    urls = [parse_ssh_url(text) for text in spellings]
    assert len({url.canonical for url in urls}) == 1
    assert len(set(urls)) == 1
    assert all(url == urls[0] for url in urls)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("git@host:team/repo.git", "alice@host:team/repo.git"),
        ("git@host:team/repo.git", "host:team/repo.git"),
        ("ssh://git@host:2222/team/repo.git", "ssh://git@host/team/repo.git"),
        ("git@host:team/repo.git", "git@host:team/other.git"),
        ("git@host:team/repo.git", "git@other:team/repo.git"),
        ("git@host:~/repo.git", "git@host:repo.git"),
    ],
)
def test_different_repositories_differ(one: str, other: str) -> None:
    assert parse_ssh_url(one) != parse_ssh_url(other)
    assert parse_ssh_url(one).canonical != parse_ssh_url(other).canonical


def test_an_ssh_url_never_equals_a_string() -> None:
    url = parse_ssh_url("git@host:team/repo.git")
    assert url != url.canonical
    assert url != url.git_url


def test_direct_construction_is_checked_and_normalised() -> None:
    url = SSHURL(None, "Example.COM", 22, "/team/repo.git", "")
    assert (url.host, url.port, url.path) == ("example.com", None, "team/repo.git")
    with pytest.raises(URLError) as caught:
        SSHURL("git", "-oProxyCommand=x", None, "repo", "")
    assert caught.value.code == "url_option_injection"
    with pytest.raises(URLError) as caught:
        SSHURL("git", "host", None, "a/../b", "")
    assert caught.value.code == "url_dot_segments"
    with pytest.raises(URLError) as caught:
        SSHURL("git", "host", 70000, "repo", "")
    assert caught.value.code == "url_invalid"


# -- git reads git_url as we mean it ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ssh_args"),
    [
        (
            "git@bitbucket.org:team/repo.git",
            ["git@bitbucket.org", "git-upload-pack '/team/repo.git'"],
        ),
        ("ssh://git@host:2222/a/b.git", ["-p", "2222", "git@host", "git-upload-pack '/a/b.git'"]),
        ("git@[::1]:owner/repo.git", ["git@::1", "git-upload-pack '/owner/repo.git'"]),
        ("git@host:~alice/repo.git", ["git@host", "git-upload-pack '~alice/repo.git'"]),
        ("ssh://host/100%25/r'q", ["host", "git-upload-pack '/100%/r'\\''q'"]),
    ],
)
def test_git_passes_git_url_to_ssh_as_intended(
    tmp_path: Path, text: str, ssh_args: list[str]
) -> None:
    """Real git, with a recording program in place of ssh: host, port and path arrive intact."""
    record = tmp_path / "ssh-args"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\nexit 1\n")
    fake_ssh.chmod(stat.S_IRWXU)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_SSH": str(fake_ssh),
        "GIT_SSH_VARIANT": "ssh",
    }
    url = parse_ssh_url(text)
    subprocess.run(
        ["git", "ls-remote", "--", url.git_url],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    args = record.read_text().splitlines()
    assert args[-len(ssh_args) :] == ssh_args


# -- refusals ---------------------------------------------------------------------------------

REFUSED = [
    ("", "url_empty"),
    ("  \n\t ", "url_empty"),
    ("https://bitbucket.org/team/repo.git", "url_https"),
    ("http://github.com/owner/repo", "url_https"),
    ("HTTPS://gitlab.com/group/repo.git", "url_https"),
    ("git://github.com/owner/repo.git", "url_unsupported_scheme"),
    ("ftp://host/repo.git", "url_unsupported_scheme"),
    ("ftps://host/repo.git", "url_unsupported_scheme"),
    ("rsync://host/repo.git", "url_unsupported_scheme"),
    ("file:///etc", "url_file"),
    ("FILE://localhost/srv/repo.git", "url_file"),
    ("/srv/git/repo.git", "url_local_path"),
    ("./repo", "url_local_path"),
    ("../repo", "url_local_path"),
    ("~/repo.git", "url_local_path"),
    ("C:\\repos\\repo.git", "url_local_path"),
    ("C:/repos/repo.git", "url_local_path"),
    ("c:repo", "url_local_path"),
    ("repo", "url_local_path"),
    ("some/dir:with-colon", "url_local_path"),
    ("ext::sh -c id", "url_transport"),
    ("ext::sh -c touch% /tmp/pwned", "url_transport"),
    ("fd::17", "url_transport"),
    ("host::repo", "url_transport"),
    ("persistent-https::host/repo", "url_transport"),
    ("ssh://-oProxyCommand=touch${IFS}/tmp/x/y", "url_option_injection"),
    ("-oProxyCommand=x@h:r", "url_option_injection"),
    ("git@-oProxyCommand=x:repo", "url_option_injection"),
    ("ssh://git@-oProxyCommand=x/repo", "url_option_injection"),
    ("ssh://%2doProxyCommand=x/repo", "url_option_injection"),
    ("ssh://-oProxyCommand=x@host/repo", "url_option_injection"),
    ("-u@host:repo", "url_option_injection"),
    ("git@host:-u", "url_option_injection"),
    ("git@host:/-u", "url_option_injection"),
    ("ssh://git@host/-u", "url_option_injection"),
    ("ssh://git@host/%2du", "url_option_injection"),
    ("git@host:team/my repo.git", "url_whitespace"),
    ("git@host:team/repo.git\nevil", "url_whitespace"),
    ("git@host:team/\trepo.git", "url_whitespace"),
    ("git@host:team/\u00a0repo.git", "url_whitespace"),
    ("git@host:team/\u3000repo.git", "url_whitespace"),
    ("ssh://host/team/my%20repo", "url_whitespace"),
    ("ssh://host/team/repo%0a", "url_whitespace"),
    ("git@host:team/\x00repo.git", "url_control_chars"),
    ("git@host:team/\x7frepo.git", "url_control_chars"),
    ("git@host:team/\x1b[31mrepo.git", "url_control_chars"),
    ("git@host:team/\u202erepo.git", "url_control_chars"),
    ("git@host:team/\u200brepo.git", "url_control_chars"),
    ("ssh://host/team/repo%00", "url_control_chars"),
    ("ssh://host/team/repo%7f", "url_control_chars"),
    ("git@host:", "url_empty_path"),
    ("git@host:/", "url_empty_path"),
    ("git@host:.", "url_empty_path"),
    ("ssh://git@host", "url_empty_path"),
    ("ssh://git@host/", "url_empty_path"),
    ("ssh://git@host:2222//./", "url_empty_path"),
    ("git@host:../repo", "url_dot_segments"),
    ("git@host:team/../../etc/passwd", "url_dot_segments"),
    ("git@host:~/..", "url_dot_segments"),
    ("ssh://host/a/../b", "url_dot_segments"),
    ("ssh://host/a/%2e%2e/b", "url_dot_segments"),
    ("ssh://host/a/%2E%2e/b", "url_dot_segments"),
    ("ssh://host/a/.%2e/b", "url_dot_segments"),
    ("ssh://host/a/%252e%252e/b", "url_dot_segments"),
    ("git@host:a/%2e%2e/b", "url_dot_segments"),
    ("ssh://git@host:99999/repo", "url_invalid"),
    ("ssh://git@host:0/repo", "url_invalid"),
    ("ssh://git@host:abc/repo", "url_invalid"),
    ("ssh://git@host:+22/repo", "url_invalid"),
    ("ssh://git@host:/repo", "url_invalid"),
    ("ssh://git@/repo", "url_invalid"),
    ("ssh:///repo", "url_invalid"),
    ("@host:repo", "url_invalid"),
    (":repo", "url_invalid"),
    ("a@b@host:repo", "url_invalid"),
    ("ssh://[::1/repo", "url_invalid"),
    ("ssh://[::1]x/repo", "url_invalid"),
    ("ssh://[::g]/repo", "url_invalid"),
    ("ssh://fe80::1/repo", "url_invalid"),
    ("ssh://[fe80::1%25eth0]/repo", "url_invalid"),
    ("git@[example.com:2222]:repo", "url_invalid"),
    ("git@[::1:repo", "url_invalid"),
    ("ssh://ho%73t/repo", "url_invalid"),
    ("ssh://user:password@host/repo", "url_invalid"),
    ("ssh://us$er@host/repo", "url_invalid"),
    ("git@github.com/team/repo", "url_invalid"),
    ("ssh:/git@host/team/repo.git", "url_invalid"),
    ("https:/github.com/team/repo", "url_invalid"),
    ("git@h\u00e9st.example:repo", "url_invalid"),
    ("git@bad_host!:repo", "url_invalid"),
    ("git@host..example:repo", "url_invalid"),
    ("git@host.example.:repo", "url_invalid"),
    ("ssh://host/a%zz", "url_invalid"),
    ("ssh://host/a%", "url_invalid"),
    ("ssh://host/%ff%fe", "url_invalid"),
    ("git@host:" + "ab/" * 1000, "url_invalid"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n", "url_key_material"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogus comment", "url_key_material"),
]


@pytest.mark.parametrize(("text", "code"), REFUSED)
def test_refusals_have_their_own_code(text: str, code: str) -> None:
    with pytest.raises(URLError) as caught:
        parse_ssh_url(text)
    error = caught.value
    assert error.code == code
    assert error.hint
    assert "\n" not in error.message and "\n" not in error.hint
    assert len(error.message) < 400


def test_refusal_codes_cover_the_contract() -> None:
    expected = {
        "url_empty",
        "url_https",
        "url_unsupported_scheme",
        "url_file",
        "url_local_path",
        "url_transport",
        "url_option_injection",
        "url_whitespace",
        "url_control_chars",
        "url_empty_path",
        "url_dot_segments",
        "url_invalid",
        "url_key_material",
    }
    assert {code for _, code in REFUSED} == expected


def test_message_shows_the_url_escaped_and_truncated() -> None:
    text = "git@host:team/\x1b[2J" + "x/" * 500
    with pytest.raises(URLError) as caught:
        parse_ssh_url(text)
    message = caught.value.message
    assert "\x1b" not in message
    assert "\\x1b" in message
    assert len(message) < 400


def test_credentials_in_a_url_are_not_repeated() -> None:
    with pytest.raises(URLError) as caught:
        parse_ssh_url("https://alice:s3cr3t-t0ken@git.example.com/team/repo.git")
    assert caught.value.code == "url_https"
    assert "s3cr3t" not in caught.value.message + caught.value.hint
    assert "git@git.example.com:team/repo.git" in caught.value.hint


def test_key_material_is_never_echoed() -> None:
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
    for text in (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----",
        body,
        f"git@host:{body}",
    ):
        with pytest.raises(URLError) as caught:
            parse_ssh_url(text)
        assert body[:40] not in caught.value.message + caught.value.hint
        assert "b3BlbnNzaC1rZXktdjE" not in repr(caught.value)


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("https://bitbucket.org/team/repo.git", "git@bitbucket.org:team/repo.git"),
        ("https://user@bitbucket.org/team/repo.git", "git@bitbucket.org:team/repo.git"),
        ("https://bitbucket.org/team/repo/src/main/README.md", "git@bitbucket.org:team/repo.git"),
        ("https://github.com/owner/repo", "git@github.com:owner/repo.git"),
        ("https://www.github.com/owner/repo.git", "git@github.com:owner/repo.git"),
        ("https://github.com/owner/repo/tree/main?tab=readme", "git@github.com:owner/repo.git"),
        ("https://gitlab.com/group/sub/repo.git", "git@gitlab.com:group/sub/repo.git"),
        ("https://gitlab.com/group/sub/repo/-/tree/main", "git@gitlab.com:group/sub/repo.git"),
        ("http://git.example.com:80/scm/team/repo.git", "git@git.example.com:scm/team/repo.git"),
        ("https://[::1]/team/repo.git", "git@[::1]:team/repo.git"),
    ],
)
def test_https_refusal_works_out_the_ssh_form(text: str, suggestion: str) -> None:
    with pytest.raises(URLError) as caught:
        parse_ssh_url(text)
    assert caught.value.code == "url_https"
    assert suggestion in caught.value.hint
    assert parse_ssh_url(suggestion).canonical.startswith("ssh://git@")


@pytest.mark.parametrize(
    ("text", "guess", "lossy"),
    [
        (
            "https://127.0.0.1:2222/acme/widgets.git",
            "ssh://git@127.0.0.1:2222/acme/widgets.git",
            "git@127.0.0.1:acme",
        ),
        (
            "http://git.example.com:8080/scm/team/repo",
            "ssh://git@git.example.com:8080/scm/team/repo.git",
            "git@git.example.com:scm",
        ),
        (
            "https://[::1]:7990/team/repo.git",
            "ssh://git@[::1]:7990/team/repo.git",
            "git@[::1]:team",
        ),
    ],
)
def test_https_refusal_with_a_port_never_suggests_a_url_without_it(
    text: str, guess: str, lossy: str
) -> None:
    # issue 10 §1.11: the scp form cannot carry the port, so it must not be offered.
    with pytest.raises(URLError) as caught:
        parse_ssh_url(text)
    hint = caught.value.hint
    assert caught.value.code == "url_https"
    assert lossy not in hint
    assert "if the server takes SSH on port" in hint
    assert guess in hint
    assert parse_ssh_url(guess).port is not None


def test_https_refusal_without_a_path_still_helps() -> None:
    with pytest.raises(URLError) as caught:
        parse_ssh_url("https://github.com/")
    assert caught.value.code == "url_https"
    assert "git@" in caught.value.hint


def test_non_text_is_refused_with_our_error() -> None:
    with pytest.raises(URLError) as caught:
        parse_ssh_url(b"git@host:repo.git")  # type: ignore[arg-type]
    assert caught.value.code == "url_invalid"


# -- properties -------------------------------------------------------------------------------

VALID = [row[0] for row in ACCEPTED]
MUTATION_PIECES = [
    "-",
    " ",
    "\t",
    "\n",
    "\x00",
    "\x7f",
    "%",
    "%2e",
    "%2d",
    "%25",
    "%00",
    "..",
    ".",
    "/",
    ":",
    "::",
    "@",
    "[",
    "]",
    "~",
    "ssh://",
    "file://",
    ".git",
    "\u202e",
    "é",
    "22",
    "65536",
]


@st.composite
def mutated_urls(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(MUTATION_PIECES) | st.text(max_size=3))
        if action == "insert":
            text = text[:position] + piece + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 3)) :]
        else:
            text = text[:position] + piece + text[position + len(piece) :]
    return text


def _check_accepted(url: SSHURL) -> None:
    again = parse_ssh_url(url.canonical)
    assert again == url
    assert again.canonical == url.canonical
    assert parse_ssh_url(url.git_url) == url
    git_url = url.git_url
    assert git_url.startswith("ssh://")
    assert not any(char.isspace() or not char.isprintable() for char in git_url)
    assert not url.host.startswith("-")
    assert not (url.user or "").startswith("-")
    assert not url.path.startswith(("-", "/"))
    assert ".." not in url.path.split("/")
    assert url.repo_name


def _parse_or_our_error(text: str) -> None:
    try:
        url = parse_ssh_url(text)
    except URLError as error:
        assert error.code.startswith("url_")
        assert "\n" not in error.message
        return
    _check_accepted(url)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_arbitrary_text_only_raises_url_error(text: str) -> None:
    _parse_or_our_error(text)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.from_regex(
        r"(ssh://)?([a-z-]{0,6}@)?(\[[0-9a-f:]{0,8}\]|[A-Za-z0-9.-]{0,8})"
        r"(:[0-9]{0,6})?[:/][ -~]{0,30}",
        fullmatch=True,
    )
)
def test_url_shaped_text_only_raises_url_error(text: str) -> None:
    _parse_or_our_error(text)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_urls())
def test_mutated_urls_only_raise_url_error(text: str) -> None:
    _parse_or_our_error(text)


@pytest.mark.parametrize("text", VALID)
def test_accepted_urls_round_trip(text: str) -> None:
    _check_accepted(parse_ssh_url(text))
