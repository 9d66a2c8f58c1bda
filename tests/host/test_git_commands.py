"""One git command on the host: the use case alone, and through both SSH transports.

The transports — the embedded server (asyncssh) and OpenSSH mode's forced command
(``repolink host shell``) — must behave identically; the cases that matter run through both
with the real ``git`` and ``ssh``. A store that refuses to record a key's use is made real with
a SQLite trigger, not a stand-in: the update really fails inside the database.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repolink.errors import NotFound, PermissionDenied, Unauthorized, ValidationError
from repolink.git.refs import LOOSE_REFS_TO_PACK
from repolink.git.runner import HardenedRunner
from repolink.host.git_commands import GitCommands
from repolink.host.info import AccessKeyInfo, KeyHandle
from repolink.host.repo_storage import RepositoryStorage
from repolink.host.service import HostService
from repolink.settings import Settings
from repolink.store import Store
from support.hostkit import (
    EmbeddedHost,
    GitClient,
    KeyPair,
    LoopThread,
    make_source_repository,
    start_embedded_host,
)
from support.postgres import database_env

pytestmark = pytest.mark.databases

MakeKey = Callable[[str], KeyPair]
USE_NOT_RECORDED = "cannot record the use of"


def refuse_use_records(store: Store) -> None:
    """From now on the database refuses every write of a key's ``last_used``."""
    with store.engine.begin() as connection:
        postgresql = connection.dialect.name == "postgresql"
        if postgresql:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_use() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'use records are refused'; END $$"
            )
        for table in ("host_access_keys", "host_account_keys"):
            action = (
                "FOR EACH ROW EXECUTE FUNCTION refuse_use()"
                if postgresql
                else "BEGIN SELECT RAISE(ABORT, 'use records are refused'); END"
            )
            connection.exec_driver_sql(
                f"CREATE TRIGGER refuse_use_{table} BEFORE UPDATE OF last_used ON {table} " + action
            )


@dataclass
class ReadOnlyKey:
    """``team/app`` with one read-only access key, and the use case on that host."""

    commands: GitCommands
    info: AccessKeyInfo
    key: KeyPair

    @property
    def fingerprint(self) -> str:
        return self.info.fingerprint_sha256


@pytest.fixture
def ci(host_settings: Settings, host_service: HostService, make_key: MakeKey) -> ReadOnlyKey:
    host_service.create_repository("team", "app")
    key = make_key("ci")
    info = host_service.add_access_key("team", "app", key.public_line, label="ci")
    return ReadOnlyKey(
        GitCommands(host_service, RepositoryStorage(host_settings, runner=HardenedRunner())),
        info,
        key,
    )


# -- the use case ------------------------------------------------------------------------------


def test_authorize_records_the_use_and_builds_the_hardened_command(
    host_service: HostService, ci: ReadOnlyKey
) -> None:
    commands, info = ci.commands, ci.info

    authorized = commands.authorize(
        info.fingerprint_sha256, "git-upload-pack '/team/app.git'", git_protocol="version=2"
    )
    assert authorized.grant.key_id == info.id and not authorized.pushing
    assert authorized.path == host_service.repository_path(authorized.grant.repository)
    assert authorized.argv[-1] == str(authorized.path)
    assert authorized.env["GIT_PROTOCOL"] == "version=2"
    assert authorized.env["GIT_CONFIG_NOSYSTEM"] == "1"  # environment.hardened_env
    assert host_service.get_access_key("team", "app", info.id).last_used is not None
    # A read changes nothing, so it announces nothing, whatever its status.
    assert commands.refs_before(authorized) == {}
    assert commands.after_push(authorized, {}, 0) == []

    malformed = commands.authorize(
        info.fingerprint_sha256, "git-upload-pack 'team/app'", git_protocol="version=2;rm"
    )
    assert "GIT_PROTOCOL" not in malformed.env


def test_authorize_is_checked_on_every_command(host_service: HostService, ci: ReadOnlyKey) -> None:
    commands, info = ci.commands, ci.info

    with pytest.raises(PermissionDenied) as caught:
        commands.authorize(info.fingerprint_sha256, "git-receive-pack 'team/app.git'")
    assert caught.value.code == "read_only_key"
    with pytest.raises(ValidationError):
        commands.authorize(info.fingerprint_sha256, "bash")
    # Exact fingerprints only: a prefix of the key's fingerprint is another key.
    with pytest.raises(NotFound):
        commands.authorize(info.fingerprint_sha256[:-1], "git-upload-pack 'team/app.git'")

    host_service.update_access_key("team", "app", info.id, writable=True)
    assert commands.authorize(info.fingerprint_sha256, "git-receive-pack 'team/app.git'").pushing
    host_service.remove_access_key("team", "app", info.id)
    with pytest.raises(NotFound):
        commands.authorize(info.fingerprint_sha256, "git-upload-pack 'team/app.git'")
    with pytest.raises(Unauthorized) as unknown:
        commands.authorize_handle(KeyHandle("access", info.id), "git-upload-pack 'team/app'")
    assert unknown.value.code == "key_unknown"


def test_a_refused_use_record_is_logged_and_the_command_still_runs(
    host_service: HostService,
    host_store: Store,
    ci: ReadOnlyKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    commands, info, key = ci.commands, ci.info, ci.key
    refuse_use_records(host_store)

    with caplog.at_level(logging.DEBUG, logger="repolink.host.git_commands"):
        authorized = commands.authorize(info.fingerprint_sha256, "git-upload-pack 'team/app'")
    assert authorized.grant.key_id == info.id
    assert host_service.get_access_key("team", "app", info.id).last_used is None
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    assert USE_NOT_RECORDED in message and "use records are refused" in message
    assert info.fingerprint_sha256 in message and "team/app" in message
    # Context, never key material nor the SQL statement.
    key_blob = key.public_line.split()[1]
    assert all(key_blob not in record.getMessage() for record in caplog.records)
    assert "UPDATE" not in message


# -- the same behaviour through both transports -------------------------------------------------


@dataclass
class Transport:
    """Real git clients reaching one host, over the embedded server or OpenSSH mode's shell."""

    name: str
    host: EmbeddedHost
    root: Path

    def client(self, key: KeyPair) -> GitClient:
        return self.host.client(key, name=f"{self.name}-{key.private_path.name}")

    def env(self, client: GitClient) -> dict[str, str]:
        env = client.env()
        if self.name == "shell":
            env["GIT_SSH_COMMAND"] = str(self._shell_wrapper(client.key))
            env["GIT_SSH_VARIANT"] = "simple"
        return env

    def url(self, client: GitClient, path: str) -> str:
        return client.url(path) if self.name == "embedded" else f"ssh://git@host.invalid/{path}"

    def git(
        self, client: GitClient, *args: str, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.env(client),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )

    def _shell_wrapper(self, key: KeyPair) -> Path:
        """What sshd does for a key in OpenSSH mode: the forced command, with the client's
        command in SSH_ORIGINAL_COMMAND (git calls this as ``WRAPPER HOST COMMAND``)."""
        handle = self.host.service.find_key(key.fingerprint)
        assert handle is not None
        wrapper = self.root / f"sshd-{handle.token}"
        forced = shlex.join(
            [
                "env",
                f"REPOLINK_DATA_DIR={self.host.settings.resolved_data_dir}",
                *(
                    f"{name}={value}"
                    for name, value in database_env(self.host.settings.data_dir).items()
                ),
                sys.executable,
                "-m",
                "repolink",
                "host",
                "shell",
                handle.token,
            ]
        )
        wrapper.write_text(f'#!/bin/sh\nSSH_ORIGINAL_COMMAND="$2" exec {forced}\n')
        wrapper.chmod(0o700)
        return wrapper


@pytest.fixture(params=["embedded", "shell"])
def transport(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Transport]:
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path / "host", loop)
    try:
        yield Transport(str(request.param), host, tmp_path)
    finally:
        stop()
        loop.stop()


def test_a_refused_use_record_never_refuses_a_clone_or_a_push(
    transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    host = transport.host
    service = host.service
    service.create_repository("team", "app")
    person, machine = host.key("person"), host.key("machine")
    service.add_account_key("team", person.public_line, label="developer")
    reader = service.add_access_key("team", "app", machine.public_line, label="ci")
    refuse_use_records(host.store)

    pusher = transport.client(person)
    source = transport.root / "source"
    commits = make_source_repository(source, pusher.env(), commits=2)
    with caplog.at_level(logging.WARNING, logger="repolink.host.git_commands"):
        pushed = transport.git(
            pusher, "push", transport.url(pusher, "team/app.git"), "main", cwd=source
        )
        assert pushed.returncode == 0, pushed.stderr

        clone = transport.root / "clone"
        cloner = transport.client(machine)
        cloned = transport.git(cloner, "clone", transport.url(cloner, "team/app.git"), str(clone))
        assert cloned.returncode == 0, cloned.stderr
    assert transport.git(cloner, "rev-parse", "HEAD", cwd=clone).stdout.strip() == commits[-1]

    # Nothing was recorded, and each failure was logged with its repository and key: by the
    # server's logger in-process, on the forced command's stderr in OpenSSH mode.
    assert service.get_access_key("team", "app", reader.id).last_used is None
    if transport.name == "embedded":
        logged = "\n".join(record.getMessage() for record in caplog.records)
        host.wait_for_pushes(1)
        [(repository, updates)] = host.pushes
        assert repository.full_name == "team/app"
        assert [(u.name, u.new) for u in updates] == [("refs/heads/main", commits[-1])]
    else:
        logged = pushed.stderr + cloned.stderr
        assert "internal_error" not in logged and "Traceback" not in logged
    for key in (person, machine):
        assert f"{key.fingerprint}) on team/app: use records are refused" in logged


def test_a_push_of_many_refs_leaves_them_packed(transport: Transport) -> None:
    # issue 10 §3.8: 100k pushed tags stayed 393 MB of loose ref files.
    host = transport.host
    service = host.service
    repository = service.create_repository("team", "many")
    person = host.key("person")
    service.add_account_key("team", person.public_line, label="developer")
    pusher = transport.client(person)
    source = transport.root / "source"
    (head,) = make_source_repository(source, pusher.env(), commits=1)
    count = LOOSE_REFS_TO_PACK + 20
    updates = "".join(f"create refs/tags/t{n:04d} {head}\n" for n in range(count))
    subprocess.run(
        ["git", "-C", str(source), "update-ref", "--stdin"], input=updates, text=True, check=True
    )

    url = transport.url(pusher, "team/many.git")
    pushed = transport.git(pusher, "push", url, "main", "refs/tags/*:refs/tags/*", cwd=source)
    assert pushed.returncode == 0, pushed.stderr
    if transport.name == "embedded":
        host.wait_for_pushes(1)  # the server finishes the push after the client is done

    stored = service.repository_path(repository)
    assert not any((stored / "refs" / "tags").iterdir())
    listed = subprocess.run(
        ["git", f"--git-dir={stored}", "for-each-ref", "refs/tags"], capture_output=True, text=True
    )
    assert len(listed.stdout.splitlines()) == count
