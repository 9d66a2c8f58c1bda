"""repolink.git.protocol against the real git: the remote command git itself sends for a URL, and
ref listings from a real ``git upload-pack`` (what the server runs) in protocol v0, v1, v2."""

from __future__ import annotations

import io
import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from repolink.git.protocol import ProtocolError, list_refs, upload_pack_command
from repolink.urls import parse_ssh_url

PREFIXES = ("refs/heads/", "refs/tags/")
TIMEOUT = 30


def _pkt(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + 4) + payload


FLUSH = b"0000"


def _isolated_env(home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    return _isolated_env(tmp_path / "home")


def _git(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# -- the remote command, as git sends it ------------------------------------------------------


def _command_git_sends(git_url: str, env: dict[str, str], tmp_path: Path) -> str:
    """The last argument git gives its ssh command for ``git ls-remote <git_url>``."""
    record = tmp_path / "ssh-argv"
    # Named "ssh" so that git treats it as OpenSSH (no "-G" probe, ports allowed).
    script = tmp_path / "bin" / "ssh"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" > {shlex.quote(str(record))}\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    done = subprocess.run(
        ["git", "ls-remote", "--", git_url],
        env={**env, "GIT_SSH_COMMAND": shlex.quote(str(script))},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
    )
    assert done.returncode != 0  # the fake ssh failed the connection
    argv = record.read_bytes().decode("utf-8").split("\0")[:-1]
    assert argv, done.stderr
    return argv[-1]


@pytest.mark.parametrize(
    "text",
    [
        "ssh://git@host:2222/team/repo.git",
        "ssh://host/~user/repo.git",
        "git@host:team/repo.git",
        "git@host:/team/repo",
        "git@host:~/repo.git",
        "git+ssh://git@host/team/x~y/repo.git/",
        "ssh://git@[::1]:2222/team/repo.git",
        "ssh://git@host/team/c++_lib-v1.0@2/my.repo_name-x.git",
        "git@host:team/a+b/c@d/e-f/g.h_i.git",
        "ssh://git@host/team/%7Euser/repo.git",
    ],
)
def test_the_command_is_what_git_sends(text: str, git_env: dict[str, str], tmp_path: Path) -> None:
    url = parse_ssh_url(text)
    command = upload_pack_command(url)

    assert command is not None
    assert command.startswith("git-upload-pack '")
    assert command == _command_git_sends(url.git_url, git_env, tmp_path)


@pytest.mark.parametrize(
    "text", ["git@host:team/it's.git", "git@host:team/wow!.git", "ssh://host/team/50%25.git"]
)
def test_paths_git_would_quote_otherwise_have_no_command(
    text: str, git_env: dict[str, str], tmp_path: Path
) -> None:
    url = parse_ssh_url(text)

    assert upload_pack_command(url) is None
    if "'" in url.path or "!" in url.path:
        # Why: git escapes these inside its single quotes, so the plain form would be wrong.
        naive = f"git-upload-pack '/{url.path}'"
        assert _command_git_sends(url.git_url, git_env, tmp_path) != naive


def test_a_path_with_a_space_has_no_command() -> None:
    # parse_ssh_url refuses whitespace, so an SSHURL never holds one; build the value the
    # dataclass way without its checks to prove upload_pack_command refuses it on its own.
    url = parse_ssh_url("git@host:team/repo.git")
    object.__setattr__(url, "path", "team/my repo.git")

    assert upload_pack_command(url) is None


# -- a real git upload-pack -------------------------------------------------------------------


class PipeStream:
    """The standard streams of a local ``git upload-pack``, as list_refs reads them."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self.received = bytearray()

    def read_exactly(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = self._stdout.read(count - len(data))
            if not chunk:
                raise EOFError("upload-pack's output ended early")
            data += chunk
        self.received += data
        return bytes(data)

    def write(self, data: bytes) -> None:
        self._stdin.write(data)
        self._stdin.flush()


def _list_with_upload_pack(
    repo: Path, env: dict[str, str], protocol: str | None, prefixes: tuple[str, ...] = PREFIXES
) -> tuple[dict[str, str], bytes]:
    """list_refs on ``git upload-pack <repo>``; the refs and the bytes read. Checks that
    upload-pack ends cleanly once its input is closed."""
    server_env = dict(env)
    if protocol is not None:
        server_env["GIT_PROTOCOL"] = protocol
    process = subprocess.Popen(
        ["git", "upload-pack", str(repo)],
        env=server_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        stream = PipeStream(process)
        refs = list_refs(stream, prefixes)
        assert process.stdin is not None
        process.stdin.close()
        assert process.stdout is not None
        rest = process.stdout.read()
        assert process.wait(timeout=TIMEOUT) == 0
        assert process.stderr is not None
        assert rest == b"", rest  # nothing left unread: no pack was sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return refs, bytes(stream.received)


def _ls_remote(repo: Path, env: dict[str, str]) -> dict[str, str]:
    out = _git(env, "ls-remote", "--heads", "--tags", "--refs", str(repo))
    refs = {}
    for line in out.splitlines():
        target, name = line.split("\t")
        refs[name] = target
    return refs


def _make_repo(path: Path, env: dict[str, str], *, object_format: str = "sha1") -> Path:
    _git(env, "init", "-q", "-b", "main", f"--object-format={object_format}", str(path))
    for number in range(3):
        (path / "file.txt").write_text(f"content {number}\n")
        _git(env, "add", "file.txt", cwd=path)
        _git(env, "commit", "-q", "-m", f"commit {number}", cwd=path)
    _git(env, "branch", "feature/x", "HEAD~1", cwd=path)
    _git(env, "branch", "release-1.0", "HEAD~2", cwd=path)
    _git(env, "tag", "v1.0", "HEAD~2", cwd=path)
    _git(env, "tag", "-a", "v1.1", "-m", "release 1.1", "HEAD~1", cwd=path)
    _git(env, "tag", "-a", "releases/2024", "-m", "nested annotated", "HEAD", cwd=path)
    blob = _git(env, "hash-object", "-w", "file.txt", cwd=path)
    _git(env, "tag", "blob-tag", blob, cwd=path)
    _git(env, "tag", "-a", "blob-tag-annotated", "-m", "a tag of a blob", blob, cwd=path)
    # Outside the prefixes: never listed.
    _git(env, "notes", "add", "-m", "a note", "HEAD", cwd=path)
    _git(env, "update-ref", "refs/pull/1/head", "HEAD~1", cwd=path)
    return path


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _isolated_env(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, module_env: dict[str, str]) -> Path:
    return _make_repo(tmp_path_factory.mktemp("repo") / "repo", module_env)


@pytest.fixture(scope="module")
def sha256_repo(tmp_path_factory: pytest.TempPathFactory, module_env: dict[str, str]) -> Path:
    return _make_repo(
        tmp_path_factory.mktemp("repo256") / "repo", module_env, object_format="sha256"
    )


@pytest.fixture(scope="module")
def empty_repo(tmp_path_factory: pytest.TempPathFactory, module_env: dict[str, str]) -> Path:
    path = tmp_path_factory.mktemp("empty") / "empty.git"
    _git(module_env, "init", "-q", "--bare", str(path))
    return path


PROTOCOLS = [
    pytest.param("version=2", b"version 2\n", id="v2"),
    pytest.param("version=1", b"version 1\n", id="v1"),
    pytest.param(None, None, id="v0"),
]


@pytest.mark.parametrize(("protocol", "banner"), PROTOCOLS)
def test_lists_branches_and_tags_as_ls_remote_does(
    repo: Path, module_env: dict[str, str], protocol: str | None, banner: bytes | None
) -> None:
    expected = _ls_remote(repo, module_env)

    refs, received = _list_with_upload_pack(repo, module_env, protocol)

    assert refs == expected
    # The listing is what the test means it to be: nested branches, every kind of tag, the
    # annotated one by its tag object.
    assert {"refs/heads/feature/x", "refs/tags/releases/2024", "refs/tags/blob-tag"} <= set(refs)
    assert refs["refs/tags/v1.1"] != _git(module_env, "rev-parse", "v1.1^{commit}", cwd=repo)
    assert refs["refs/tags/blob-tag-annotated"] == _git(
        module_env, "rev-parse", "blob-tag-annotated", cwd=repo
    )
    assert not any(name.startswith(("refs/notes/", "refs/pull/")) for name in refs)
    # The server spoke the protocol version asked for.
    if banner is None:
        assert b"version " not in received[:20]
    else:
        assert received[4 : 4 + len(banner)] == banner


@pytest.mark.parametrize(("protocol", "banner"), PROTOCOLS)
def test_lists_only_the_prefixes_asked_for(
    repo: Path, module_env: dict[str, str], protocol: str | None, banner: bytes | None
) -> None:
    expected = {
        name: target
        for name, target in _ls_remote(repo, module_env).items()
        if name.startswith("refs/heads/")
    }

    refs, _ = _list_with_upload_pack(repo, module_env, protocol, ("refs/heads/",))

    assert refs == expected and "refs/heads/main" in refs


@pytest.mark.parametrize(("protocol", "banner"), PROTOCOLS)
def test_lists_a_sha256_repository(
    sha256_repo: Path, module_env: dict[str, str], protocol: str | None, banner: bytes | None
) -> None:
    expected = _ls_remote(sha256_repo, module_env)

    refs, _ = _list_with_upload_pack(sha256_repo, module_env, protocol)

    assert refs == expected
    assert len(refs["refs/heads/main"]) == 64


@pytest.mark.parametrize(("protocol", "banner"), PROTOCOLS)
def test_an_empty_repository_has_no_refs(
    empty_repo: Path, module_env: dict[str, str], protocol: str | None, banner: bytes | None
) -> None:
    refs, _ = _list_with_upload_pack(empty_repo, module_env, protocol)

    assert refs == {}


# -- answers that are not the protocol --------------------------------------------------------


class ScriptedStream:
    """A server that says ``data`` whatever it is told; what it was told is kept."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.written = bytearray()

    def read_exactly(self, count: int) -> bytes:
        chunk = self._data.read(count)
        if len(chunk) < count:
            raise EOFError("the scripted answer ended")
        return chunk

    def write(self, data: bytes) -> None:
        self.written += data


V2_CAPABILITIES = (
    _pkt(b"version 2\n") + _pkt(b"agent=git/2.39.5\n") + _pkt(b"ls-refs=unborn\n") + FLUSH
)
OID = b"1" * 40


GARBAGE = [
    pytest.param(b"zzzz", id="not-a-length"),
    pytest.param(b"0002", id="length-below-header"),
    pytest.param(b"0001", id="delimiter-first"),
    pytest.param(_pkt(b"ERR access denied or repository not exported\n"), id="err"),
    pytest.param(
        _pkt(b"version 2\n") + _pkt(b"agent=git/2.39.5\n") + _pkt(b"fetch=shallow\n") + FLUSH,
        id="v2-without-ls-refs",
    ),
    pytest.param(
        _pkt(b"refs/heads/main\0multi_ack side-band-64k\n") + FLUSH, id="v0-ref-without-oid"
    ),
    pytest.param(
        _pkt(OID + b" HEAD\0multi_ack\n") + _pkt(b"deadbeef refs/heads/main\n") + FLUSH,
        id="v0-short-oid",
    ),
    pytest.param(V2_CAPABILITIES + _pkt(b"refs/heads/main\n") + FLUSH, id="v2-ref-no-oid"),
    pytest.param(
        V2_CAPABILITIES + _pkt(OID + b" refs/heads/main\n") + _pkt(b"ERR upload-pack died\n"),
        id="v2-err-in-listing",
    ),
]


@pytest.mark.parametrize("answer", GARBAGE)
def test_anything_unexpected_is_a_protocol_error(answer: bytes) -> None:
    stream = ScriptedStream(answer)

    with pytest.raises(ProtocolError):
        list_refs(stream, PREFIXES)


def test_no_command_is_sent_to_a_server_without_ls_refs() -> None:
    stream = ScriptedStream(
        _pkt(b"version 2\n") + _pkt(b"agent=git/2.39.5\n") + _pkt(b"fetch\n") + FLUSH
    )

    with pytest.raises(ProtocolError):
        list_refs(stream, PREFIXES)

    assert stream.written == b""


def test_the_v2_request_asks_for_the_prefixes_and_echoes_the_object_format() -> None:
    stream = ScriptedStream(
        _pkt(b"version 2\n")
        + _pkt(b"ls-refs=unborn\n")
        + _pkt(b"object-format=sha256\n")
        + FLUSH
        + _pkt(b"a" * 64 + b" refs/heads/main\n")
        + FLUSH
    )

    refs = list_refs(stream, PREFIXES)

    assert refs == {"refs/heads/main": "a" * 64}
    assert bytes(stream.written) == (
        _pkt(b"command=ls-refs\n")
        + _pkt(b"object-format=sha256\n")
        + b"0001"
        + _pkt(b"ref-prefix refs/heads/\n")
        + _pkt(b"ref-prefix refs/tags/\n")
        + FLUSH
        + FLUSH
    )
