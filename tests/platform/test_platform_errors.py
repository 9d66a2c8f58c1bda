"""Each diagnosis code produced for real: real ssh, real git, the built-in host as the peer."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from repolink.errors import FetchError, GitError, InvalidInput, RepolinkError
from repolink.git.diagnosis import FETCH_ERROR_CODES, diagnose
from repolink.git.mirrors import mirror_path
from repolink.git.runner import CompletedRun
from repolink.hints import command_hint
from repolink.keys import PrivateKey, generate_key
from repolink.platform.connections import import_private_key
from repolink.settings import Settings
from repolink.store import Store
from repolink.urls import parse_ssh_url
from support.hostkit import LoopThread, start_embedded_host
from support.platformkit import WORKSPACE, HostedRepos, Platform, granted_key


def _secret_parts(key: PrivateKey) -> list[str]:
    """Pieces that only the private key holds: its raw secret in hex and base64 (at every
    alignment), and the chunks of its file that are not also in the public key line."""
    secret = key.crypto_key.private_bytes(
        serialization.Encoding.Raw if key.key_type == "ssh-ed25519" else serialization.Encoding.DER,
        serialization.PrivateFormat.Raw
        if key.key_type == "ssh-ed25519"
        else serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    parts = [secret.hex()[:32]]
    for offset in range(3):
        parts.append(base64.b64encode(secret[offset:])[4:28].decode())
    public = key.public_key.openssh_line()
    body = "".join(
        line for line in key.to_openssh().decode().splitlines() if not line.startswith("-----")
    )
    chunks = [body[i : i + 24] for i in range(0, len(body) - 24, 24)]
    return parts + [chunk for chunk in chunks if chunk not in public]


def _assert_no_key_material(error: RepolinkError, key: PrivateKey) -> None:
    text = " ".join((error.message, error.hint, repr(error), str(error)))
    assert all(part not in text for part in _secret_parts(key))
    assert "PRIVATE KEY" not in text


def _failed(platform: Platform, slug: str, url: str, key: PrivateKey) -> RepolinkError:
    outcome = platform.connect(slug, url, key)
    assert outcome.error is not None
    assert outcome.error.code in FETCH_ERROR_CODES
    # The connection is kept, failed, with the diagnosis.
    assert outcome.connection.state == "failed"
    assert outcome.connection.error_code == outcome.error.code
    assert outcome.connection.error_message == outcome.error.message
    assert outcome.connection.error_hint == outcome.error.hint
    assert outcome.connection.attempted_at is not None
    _assert_no_key_material(outcome.error, key)
    return outcome.error


def test_wrong_key_is_auth_failed_naming_the_key_and_the_fix(
    platform: Platform, hosted: HostedRepos
) -> None:
    key = generate_key()
    error = _failed(platform, "wrong-key", hosted.app.url(), key)

    assert error.code == "auth_failed"
    assert isinstance(error, GitError)
    assert key.public_key.sha256_fingerprint in error.message
    assert key.public_key.openssh_line(with_comment=False) in error.hint
    assert "read-only access key" in error.hint

    # The user follows the hint; the kept connection then fetches fine.
    hosted.host.service.add_access_key(
        WORKSPACE, "app", key.public_key.openssh_line(), label="fixed"
    )
    result = platform.fetch("wrong-key")
    assert result.new_commits == len(hosted.app.host_commits())
    info = platform.app.connections.connection_info("wrong-key")
    assert info.state == "ok" and info.error_code is None


def test_key_of_another_repository_is_repo_not_found(
    platform: Platform, hosted: HostedRepos
) -> None:
    key = granted_key(hosted.host, "other", "elsewhere")
    error = _failed(platform, "other-repo-key", hosted.app.url(), key)

    assert error.code == "repo_not_found"
    assert "team/app" in error.message
    assert key.public_key.openssh_line(with_comment=False) in error.hint


def test_missing_repository_is_repo_not_found(platform: Platform, hosted: HostedRepos) -> None:
    key = granted_key(hosted.host, "app", "missing")
    url = f"ssh://git@127.0.0.1:{hosted.host.port}/{WORKSPACE}/no-such-repo.git"
    error = _failed(platform, "missing", url, key)

    assert error.code == "repo_not_found"
    assert "no-such-repo" in error.message


def test_unknown_host_key_names_the_presented_fingerprint(
    tmp_path: Path, hosted: HostedRepos
) -> None:
    settings = Settings(data_dir=tmp_path / "untrusting")
    with Store.open(settings) as store:
        platform = Platform(settings, store, hosted.host)  # trusts nothing
        key = granted_key(hosted.host, "app", "unknown-host")
        error = _failed(platform, "unknown-host", hosted.app.url(), key)

    assert error.code == "host_key_unknown"
    assert any(fp in error.message for fp in hosted.host.server.host_key_fingerprints)
    assert "repolink " not in error.hint  # adapter-neutral
    assert "repolink hostkeys trust" in command_hint(error)


@pytest.fixture
def replaced_host(tmp_path: Path) -> Iterator[tuple[Platform, int, list[str], list[str]]]:
    """A platform that trusted one host, and another host (new keys) on the same port now."""
    loop = LoopThread()
    first, stop_first = start_embedded_host(tmp_path / "first", loop)
    port = first.port
    old = first.server.host_key_fingerprints
    settings = Settings(data_dir=tmp_path / "platform", ssh_connect_timeout=10)
    store = Store.open(settings)
    platform = Platform(settings, store, first)
    platform.trust_host()
    stop_first()
    second, stop_second = start_embedded_host(tmp_path / "second", loop, port=port)
    try:
        yield platform, port, old, second.server.host_key_fingerprints
    finally:
        stop_second()
        store.close()
        loop.stop()


def test_changed_host_key_names_trusted_and_presented_keys(
    replaced_host: tuple[Platform, int, list[str], list[str]],
) -> None:
    platform, port, old, new = replaced_host
    assert set(old).isdisjoint(new)
    error = _failed(platform, "changed", f"ssh://git@127.0.0.1:{port}/team/app.git", generate_key())

    assert error.code == "host_key_changed"
    assert any(fp in error.message for fp in old)
    assert any(fp in error.message for fp in new)


def test_port_with_nothing_listening_is_connection_refused(platform: Platform) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening
        error = _failed(platform, "refused", f"ssh://git@127.0.0.1:{port}/a/b.git", generate_key())

    assert error.code == "connection_refused"
    assert f"127.0.0.1:{port}" in error.message


def test_unresolvable_host_is_dns_failed(platform: Platform) -> None:
    error = _failed(platform, "dns", "git@no-such-host.invalid:team/app.git", generate_key())

    assert error.code == "dns_failed"
    assert "no-such-host.invalid" in error.message


def test_silent_server_is_timeout(tmp_path: Path, hosted: HostedRepos) -> None:
    settings = Settings(data_dir=tmp_path / "impatient", ssh_connect_timeout=1)
    with (
        Store.open(settings) as store,
        socket.socket() as listener,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel accepts; nobody ever sends an SSH banner
        port = listener.getsockname()[1]
        platform = Platform(settings, store, hosted.host)
        error = _failed(platform, "silent", f"ssh://git@127.0.0.1:{port}/a/b.git", generate_key())

    assert error.code == "timeout"


def test_https_url_is_invalid_url_and_nothing_is_saved(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.project("https")
    with pytest.raises(InvalidInput) as caught:
        platform.app.connections.connect("https", "https://bitbucket.org/team/app.git")

    assert caught.value.code == "invalid_url"
    assert caught.value.reason == "url_https"  # type: ignore[attr-defined]
    assert "git@bitbucket.org:team/app.git" in caught.value.hint
    assert not platform.app.projects.project_info("https").connected


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # cut off
        lambda text: text.replace("-----END OPENSSH PRIVATE KEY-----", ""),
        lambda text: generate_key().public_key.openssh_line(),  # the public half pasted
    ],
    ids=["truncated", "no-footer", "public-key"],
)
def test_damaged_private_key_is_invalid_private_key(damage: object) -> None:
    key = generate_key()
    text = key.to_openssh().decode()
    with pytest.raises(InvalidInput) as caught:
        import_private_key(damage(text))  # type: ignore[operator]

    assert caught.value.code == "invalid_private_key"
    assert caught.value.reason.startswith("key_")  # type: ignore[attr-defined]
    _assert_no_key_material(caught.value, key)


# -- the mapping of messages no real peer here produces (forges, odd failures) ---------------


def _run(stderr: str, returncode: int = 128) -> CompletedRun:
    return CompletedRun(returncode, b"", stderr, timed_out=False, duration=0.1)


@pytest.mark.parametrize(
    ("stderr", "code"),
    [
        (
            "ERROR: Repository not found.\nfatal: Could not read from remote repository.",
            "repo_not_found",
        ),
        (
            "remote: The project you were looking for could not be found or you don't have "
            "permission to view it.\nfatal: Could not read from remote repository.",
            "repo_not_found",
        ),
        (
            "conq: repository access denied. deployment key is not associated with the "
            "requested repository.\nfatal: Could not read from remote repository.",
            "repo_not_found",
        ),
        ("git@bitbucket.org: Permission denied (publickey).\n", "auth_failed"),
        ("ssh: connect to host x port 22: No route to host\n", "connection_refused"),
        ("Connection timed out during banner exchange\n", "timeout"),
        ("fatal: protocol error: bad pack header\n", "git_failed"),
        (
            f"error: object {'a' * 40}: zeroPaddedFilemode: contains zero-padded file modes\n"
            "fatal: fsck error in pack objects\nfatal: unpack-objects failed\n",
            "invalid_object",
        ),
    ],
)
def test_forge_messages_map_to_one_code(stderr: str, code: str) -> None:
    key = generate_key()
    error = diagnose(
        _run(stderr),
        what="fetching",
        url=parse_ssh_url("git@example.com:team/app.git"),
        public_key=key.public_key,
        trusted=[],
        secrets_paths=[],
    )
    assert isinstance(error, FetchError)
    assert error.code == code
    assert error.hint


def test_git_failed_carries_gits_scrubbed_words_only(tmp_path: Path) -> None:
    key = generate_key()
    run_dir = tmp_path / "repolink-key-abc"
    secret_line = base64.b64encode(bytes(range(60))).decode()
    stderr = (
        f"fatal: could not read {run_dir}/known_hosts: broken\n{secret_line}\n"
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    )
    error = diagnose(
        _run(stderr),
        what="fetching",
        url=parse_ssh_url("git@example.com:team/app.git"),
        public_key=key.public_key,
        trusted=[],
        secrets_paths=[run_dir],
    )
    assert error.code == "git_failed"
    assert "fatal: could not read <tmp>/known_hosts: broken" in error.message
    assert str(run_dir) not in error.message
    assert secret_line not in error.message and "PRIVATE KEY" not in error.message


# -- a third-party server that no real peer here is: gitolite, played by a scripted ssh -------

GITOLITE_DENIED = (
    "FATAL: {access} any proj deploy DENIED by fallthru\n"
    "(or you mis-spelled the reponame)\n"
    "fatal: Could not read from remote repository.\n\n"
    "Please make sure you have the correct access rights\n"
    "and the repository exists.\n"
)


def _scripted_ssh(directory: Path, stderr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``ssh`` first on PATH that prints what a remote server would, and fails."""
    directory.mkdir()
    (directory / "said.txt").write_text(stderr)
    script = directory / "ssh"
    script.write_text(f"#!/bin/sh\ncat {directory / 'said.txt'} >&2\nexit 255\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}:{os.environ['PATH']}")


@pytest.mark.parametrize("access", ["R", "W"])
def test_gitolite_denied_is_repo_not_found(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, access: str
) -> None:
    # issue 10 §1.19: this ended as git_failed showing "(or you mis-spelled the reponame)".
    _scripted_ssh(tmp_path / "gitolite", GITOLITE_DENIED.format(access=access), monkeypatch)
    error = _failed(
        platform, f"gitolite-{access.lower()}", "git@git.example.com:proj", generate_key()
    )

    assert error.code == "repo_not_found"
    assert "/proj" in error.message


def test_git_failed_shows_the_remotes_first_meaningful_line(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = (
        "\nThis server is in read-only maintenance until 14:00 UTC\n"
        "see https://status.example.com for details\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\nand the repository exists.\n"
    )
    _scripted_ssh(tmp_path / "maintenance", said, monkeypatch)
    error = _failed(platform, "maintenance", "git@git.example.com:team/app.git", generate_key())

    assert error.code == "git_failed"
    assert error.message.endswith(": This server is in read-only maintenance until 14:00 UTC")


@pytest.mark.parametrize(
    ("stderr", "shown"),
    [
        ("ERROR: quota exceeded\nfor team acme\n", "ERROR: quota exceeded"),
        ("Hello\nfatal: the remote end hung up unexpectedly\n", "Hello"),
        ("fatal: the remote end hung up unexpectedly\n", "fatal: the remote end hung up"),
        ("error: RPC failed; curl 56\nfatal: early EOF\n", "error: RPC failed; curl 56"),
    ],
)
def test_git_failed_summary_is_the_first_telling_line(stderr: str, shown: str) -> None:
    error = diagnose(
        _run(stderr),
        what="fetching",
        url=parse_ssh_url("git@example.com:team/app.git"),
        public_key=generate_key().public_key,
        trusted=[],
        secrets_paths=[],
    )
    assert error.code == "git_failed"
    assert shown in error.message


# -- a malformed object served by the remote (issue 10 §3.12: the fetch checks every object) -


def _corrupt_repository(hosted: HostedRepos, slug: str) -> tuple[Path, str]:
    """``team/<slug>`` on the host: ``app``'s main, and a commit with a broken time zone that
    :func:`_point_bad_at` names. Written straight into its storage: the host itself refuses
    such a push."""
    service = hosted.host.service
    path = service.repository_path(service.create_repository(WORKSPACE, slug))
    _git_out(path, "fetch", "-q", str(hosted.app.path), "main:main")
    tree = _git_out(path, "rev-parse", "main^{tree}")
    body = (
        f"tree {tree}\nauthor A <a@example.invalid> 1700000000 +99999\n"
        "committer A <a@example.invalid> 1700000000 +0000\n\nbroken\n"
    )
    return path, _git_out(
        path, "hash-object", "-t", "commit", "--literally", "-w", "--stdin", stdin=body
    )


def _git_out(path: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", f"--git-dir={path}", *args], input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _point_bad_at(path: Path, bad: str) -> None:
    subprocess.run(["git", f"--git-dir={path}", "update-ref", "refs/heads/bad", bad], check=True)


def _url_of(hosted: HostedRepos, slug: str) -> str:
    return hosted.app.url().replace("/app.", f"/{slug}.")


def test_a_submodule_url_git_would_run_as_an_option_is_invalid_object(
    platform: Platform, hosted: HostedRepos
) -> None:
    path, _bad = _corrupt_repository(hosted, "option-url")
    gitmodules = '[submodule "x"]\n\tpath = x\n\turl = --upload-pack=touch /tmp/pwned\n'
    blob = _git_out(path, "hash-object", "-w", "--stdin", stdin=gitmodules)
    tree = _git_out(path, "mktree", stdin=f"100644 blob {blob}\t.gitmodules\n")
    _point_bad_at(path, _git_out(path, "commit-tree", tree, "-p", "main", "-m", "hostile"))

    error = _failed(
        platform,
        "option-url",
        _url_of(hosted, "option-url"),
        granted_key(hosted.host, "option-url", "o"),
    )

    assert error.code == "invalid_object"
    assert "gitmodulesUrl" in error.message


def test_a_malformed_object_in_a_first_clone_is_invalid_object(
    platform: Platform, hosted: HostedRepos
) -> None:
    path, bad = _corrupt_repository(hosted, "corrupt-clone")
    _point_bad_at(path, bad)
    key = granted_key(hosted.host, "corrupt-clone", "corrupt-clone")

    error = _failed(platform, "corrupt-clone", _url_of(hosted, "corrupt-clone"), key)

    assert error.code == "invalid_object"
    assert f"object {bad}: badTimezone" in error.message
    assert "fsck" in error.hint


def test_a_malformed_object_in_a_refresh_is_invalid_object_and_not_stored(
    platform: Platform, hosted: HostedRepos
) -> None:
    path, bad = _corrupt_repository(hosted, "corrupt-fetch")
    key = granted_key(hosted.host, "corrupt-fetch", "corrupt-fetch")
    assert platform.connect("corrupt-fetch", _url_of(hosted, "corrupt-fetch"), key).error is None
    _point_bad_at(path, bad)

    with pytest.raises(FetchError) as caught:
        platform.fetch("corrupt-fetch")

    assert caught.value.code == "invalid_object"
    mirror = mirror_path(
        platform.settings, platform.app.connections.connection_info("corrupt-fetch").id
    )
    present = subprocess.run(["git", f"--git-dir={mirror}", "cat-file", "-e", bad])
    assert present.returncode != 0
