"""Security rules (architecture.md#security) of fast refresh and connection sharing that no
other test pins down.

- A refresh that rides a live shared connection writes no key file at all; one that needs a
  connection of its own writes exactly one, 0600 in a 0700 directory, removed afterwards.
- No git or ssh process of a fetch gets key material in its argument list or environment.
- The control socket's directories are private and ours: over-open ones are tightened, a
  symlink or another user's directory is never used.
- The control socket's name changes with every part of what a connection was made with.
- A passenger never talks to a control socket another user listens on (SO_PEERCRED).
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repolink.git import keyfiles, sharing
from repolink.git.keyfiles import KEY_DIR_PREFIX
from repolink.git.sharing import control_path
from repolink.git.sshmux import MuxUnavailable, passenger
from repolink.keys import PrivateKey
from repolink.settings import Settings
from repolink.urls import parse_ssh_url
from support.platformkit import (
    HostedRepos,
    Platform,
    control_socket_of,
    granted_key,
    master_command,
)
from support.recording import RecordingRunner

NOBODY = 65534
SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def key_files(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every key file a fetch writes (through the real ``keyfiles.private_key_file``), as the
    (file mode, directory mode) it had while in use."""
    written: list[tuple[int, int]] = []
    real = keyfiles.private_key_file

    @contextlib.contextmanager
    def spy(key: bytes, **kwargs: Any) -> Iterator[Path]:
        with real(key, **kwargs) as path:
            written.append(
                (stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode))
            )
            yield path

    monkeypatch.setattr(keyfiles, "private_key_file", spy)
    return written


def _stop_master(socket_path: Path, home: Path) -> None:
    done = master_command(socket_path, home, "exit")
    assert done.returncode == 0, done.stderr


def _key_dirs(parent: Path) -> list[Path]:
    return list(parent.glob(f"{KEY_DIR_PREFIX}*"))


# -- the key file of a refresh -----------------------------------------------------------------


def test_a_refresh_on_a_live_shared_connection_writes_no_key_file(
    platform: Platform,
    hosted: HostedRepos,
    private_tmp: Path,
    key_files: list[tuple[int, int]],
    tmp_path: Path,
) -> None:
    platform.connect("nokey", hosted.other.url(), granted_key(hosted.host, "other", "nokey"))
    assert key_files == [(0o600, 0o700)]  # the first fetch authenticated with one key file
    key_files.clear()

    assert platform.fetch("nokey").skipped
    # The refs were listed on the first fetch's authenticated connection: no key file.
    assert key_files == []
    assert _key_dirs(private_tmp) == []

    # Without a live master, the refresh needs a connection of its own, so a key file.
    _stop_master(control_socket_of(platform, "nokey"), tmp_path / "home")
    assert platform.fetch("nokey").skipped
    assert key_files == [(0o600, 0o700)]
    assert _key_dirs(private_tmp) == []


def _secret_parts(key: PrivateKey) -> list[str]:
    body = "".join(
        line for line in key.to_openssh().decode().splitlines() if not line.startswith("-----")
    )
    public = key.public_key.openssh_line()
    chunks = [body[i : i + 16] for i in range(0, len(body) - 16, 16)]
    return [chunk for chunk in chunks if chunk not in public]


def test_no_git_or_ssh_process_gets_key_material_in_argv_or_environment(
    platform: Platform,
    hosted: HostedRepos,
    private_tmp: Path,
    recording: RecordingRunner,
    tmp_path: Path,
) -> None:
    key = granted_key(hosted.host, "other", "argv")
    assert platform.connect("argv", hosted.other.url(), key).error is None
    _stop_master(control_socket_of(platform, "argv"), tmp_path / "home")
    assert platform.fetch("argv").skipped  # ls-remote over a connection of its own
    hosted.other.commit("one more for argv")
    assert platform.fetch("argv").new_commits == 1

    # Every process the platform started, however it started it, with its whole environment.
    seen = [
        "\0".join([*run.argv, *(f"{k}={v}" for k, v in run.env.items())])
        for run in recording.records
    ]
    everything = "\n".join(seen)
    # ssh was given the key by the path of its file (the clone, the ls-remote, the fetch) …
    assert everything.count(f"{KEY_DIR_PREFIX}") >= 3
    # … and never the key itself.
    assert "PRIVATE KEY" not in everything
    assert [part for part in _secret_parts(key) if part in everything] == []


# -- the control socket's directories ------------------------------------------------------------


@pytest.fixture
def short_settings(private_tmp: Path) -> Settings:
    """Settings whose data directory is short enough for the control socket to live in it."""
    data_dir = private_tmp / "d"
    data_dir.mkdir(mode=0o700)
    return Settings(data_dir=data_dir)


def _control(settings: Settings) -> Path | None:
    url = parse_ssh_url("ssh://git@127.0.0.1:2222/team/app.git")
    return control_path(settings, url=url, key_fingerprint="SHA256:abc", known_hosts="k\n")


def _socket_for(settings: Settings) -> Path:
    path = _control(settings)
    assert path is not None
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_control_socket_directories_are_ours_and_private(short_settings: Settings) -> None:
    socket_path = _socket_for(short_settings)
    root = short_settings.resolved_data_dir / sharing.CONTROL_DIR
    assert socket_path.parent.parent == root
    for directory in (root, socket_path.parent):
        assert _mode(directory) == 0o700
        assert directory.lstat().st_uid == os.getuid()


def test_over_open_control_socket_directories_are_tightened(short_settings: Settings) -> None:
    socket_path = _socket_for(short_settings)
    root = socket_path.parent.parent
    os.chmod(root, 0o755)  # noqa: S103 - the over-open directory under test
    os.chmod(socket_path.parent, 0o777)  # noqa: S103

    assert _socket_for(short_settings) == socket_path
    assert _mode(root) == 0o700
    assert _mode(socket_path.parent) == 0o700


def test_a_symlinked_control_directory_is_never_used(
    short_settings: Settings, private_tmp: Path
) -> None:
    elsewhere = private_tmp / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    planted = short_settings.resolved_data_dir / sharing.CONTROL_DIR
    planted.symlink_to(elsewhere)

    socket_path = _socket_for(short_settings)

    # The private directory under the temp directory serves instead; nothing went through
    # the link.
    assert not socket_path.is_relative_to(planted)
    assert socket_path.is_relative_to(private_tmp / f"repolink-ssh-{os.getuid()}")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_a_control_directory_of_another_user_is_never_used(
    short_settings: Settings, private_tmp: Path
) -> None:
    socket_path = _socket_for(short_settings)
    os.chown(socket_path.parent, NOBODY, NOBODY)
    fallback = private_tmp / f"repolink-ssh-{os.getuid()}"

    again = _socket_for(short_settings)

    assert again != socket_path and again.is_relative_to(fallback)
    os.chown(fallback, NOBODY, NOBODY)
    # With both roots another user's, sharing is off rather than through their directory.
    assert _control(short_settings) is None


# -- the control socket's name ---------------------------------------------------------------------

BASE = {
    "url": "ssh://git@127.0.0.1:2222/team/app.git",
    "key_fingerprint": "SHA256:one",
    "known_hosts": "[127.0.0.1]:2222 ssh-ed25519 AAAAone\n",
}


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("url", "ssh://deploy@127.0.0.1:2222/team/app.git"),  # another login user
        ("url", "ssh://127.0.0.1:2222/team/app.git"),  # no user at all
        ("url", "ssh://git@127.0.0.2:2222/team/app.git"),  # another host
        ("url", "ssh://git@127.0.0.1:2223/team/app.git"),  # another port
        ("key_fingerprint", "SHA256:two"),  # a rotated key
        ("known_hosts", "[127.0.0.1]:2222 ssh-ed25519 AAAAtwo\n"),  # another trust
    ],
)
def test_the_socket_name_changes_with_each_part_of_the_connection(
    short_settings: Settings, part: str, value: str
) -> None:
    def socket(**changes: str) -> Path:
        parts = {**BASE, **changes}
        path = control_path(
            short_settings,
            url=parse_ssh_url(parts["url"]),
            key_fingerprint=parts["key_fingerprint"],
            known_hosts=parts["known_hosts"],
        )
        assert path is not None
        return path

    assert socket() == socket()  # stable, so a later run finds the master
    assert socket(**{part: value}) != socket()


def test_the_socket_name_changes_with_the_data_directory(private_tmp: Path) -> None:
    sockets = []
    for name in ("a", "b"):
        data_dir = private_tmp / name
        data_dir.mkdir(mode=0o700)
        sockets.append(_socket_for(Settings(data_dir=data_dir)))
    # The digest itself differs, not only the root it sits in.
    assert sockets[0].parent.name != sockets[1].parent.name


# -- the passenger and another user's socket ------------------------------------------------------

LISTENER = """
import socket, sys
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen()
print("ready", flush=True)
listener.settimeout(20)
conn, _ = listener.accept()
conn.settimeout(3)
received = b""
try:
    while chunk := conn.recv(4096):
        received += chunk
except OSError:
    pass
print(len(received), flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to listen as another user")
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system python for the other user")
def test_a_passenger_never_talks_to_another_users_socket() -> None:
    with tempfile.TemporaryDirectory(prefix="rl-peer-", dir="/tmp") as shared:
        # The other user may bind here: only the uid check stands between us and its socket.
        os.chmod(shared, 0o777)  # noqa: S103
        _refused_by_uid(Path(shared) / "s")


def _refused_by_uid(socket_path: Path) -> None:
    listener = subprocess.Popen(
        [str(SYSTEM_PYTHON), "-c", LISTENER, str(socket_path)],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        assert socket_path.stat().st_uid == NOBODY

        with (
            pytest.raises(MuxUnavailable, match="another user"),
            passenger(socket_path, "git-upload-pack '/team/app.git'", timeout=5),
        ):
            pass

        # Not one byte of the protocol reached the other user's process.
        assert listener.stdout.readline().strip() == "0"
        assert listener.wait(timeout=10) == 0
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
