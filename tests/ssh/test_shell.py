"""OpenSSH mode: ``authorized-keys`` and ``shell``, alone and behind a real OpenSSH sshd."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repolink import knownhosts
from repolink.app import Repolink
from repolink.errors import ValidationError
from repolink.git import keyscan
from repolink.git.runner import HardenedRunner
from repolink.host.info import KeyHandle
from repolink.host.service import HostService
from repolink.knownhosts.values import host_key_from_line
from repolink.platform.connections import ConnectionInfo
from repolink.settings import Settings
from repolink.ssh.shell import (
    authorized_keys_line,
    default_shell_command,
    parse_key_token,
    run_shell,
)
from repolink.store import Store
from support.hostkit import GitClient, KeyPair, generate_key_pair, make_source_repository
from support.sshdkit import (
    SshdHost,
    choose_login_user,
    hand_over,
    new_data_dir,
    require_sshd,
    run_sshd,
)

MakeKey = Callable[[str], KeyPair]
SHELL = "/opt/repolink/bin/repolink"


def _repolink(
    settings: Settings, *args: str, env: dict[str, str] | None = None, input: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repolink", *args],
        env={
            "PATH": os.environ["PATH"],
            "REPOLINK_DATA_DIR": str(settings.data_dir),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        input=input,
        timeout=60,
    )


# -- authorized-keys --------------------------------------------------------------------------


def test_key_tokens() -> None:
    assert parse_key_token("key-access-12") == KeyHandle("access", 12)
    assert parse_key_token("key-account-3") == KeyHandle("account", 3)
    for text in ["key-access-", "key-other-1", "key-access-1 x", "access-1", "key-access--1"]:
        with pytest.raises(ValidationError):
            parse_key_token(text)


def test_authorized_keys_line_for_known_and_unknown_keys(
    host_service: HostService, make_key: MakeKey
) -> None:
    host_service.create_repository("team", "app")
    machine, stranger = make_key("machine"), make_key("stranger")
    info = host_service.add_access_key("team", "app", machine.public_line, label="m")
    key_type, key_base64, _ = machine.public_line.split()

    line = authorized_keys_line(
        host_service,
        login_user="git",
        key_type=key_type,
        key_base64=key_base64,
        shell_command=SHELL,
    )
    assert line == (
        f'restrict,command="{SHELL} host shell key-access-{info.id}" {key_type} {key_base64}'
    )

    other_type, other_base64, _ = stranger.public_line.split()
    for login_user, kind, blob in [
        ("git", other_type, other_base64),  # unknown key
        ("deploy", key_type, key_base64),  # another login user
        ("git", "ssh-rsa", key_base64),  # type does not match the blob
        ("git", key_type, "!!not base64!!"),
        ("git", key_type, "AAAA"),
    ]:
        assert (
            authorized_keys_line(
                host_service,
                login_user=login_user,
                key_type=kind,
                key_base64=blob,
                shell_command=SHELL,
            )
            is None
        )


def test_forced_command_quotes_are_escaped(host_service: HostService, make_key: MakeKey) -> None:
    key_type, key_base64, _ = make_key("p").public_line.split()
    host_service.add_account_key("team", f"{key_type} {key_base64}", label="p")
    line = authorized_keys_line(
        host_service,
        login_user="git",
        key_type=key_type,
        key_base64=key_base64,
        shell_command='/opt/my "quoted" dir/repolink',
    )
    assert line is not None
    assert line.startswith('restrict,command="/opt/my \\"quoted\\" dir/repolink host shell ')


def test_default_shell_command_carries_the_data_dir(host_settings: Settings) -> None:
    command = default_shell_command(host_settings)
    assert f"REPOLINK_DATA_DIR={host_settings.resolved_data_dir}" in command
    assert command.startswith("env ") and command.endswith(f"{sys.executable} -m repolink")


def test_default_shell_command_carries_the_openssh_url_when_set(host_settings: Settings) -> None:
    assert "REPOLINK_OPENSSH_URL" not in default_shell_command(host_settings)
    with_url = host_settings.model_copy(update={"openssh_url": "ssh://git@git.example.com"})
    command = default_shell_command(with_url)
    assert "REPOLINK_OPENSSH_URL=ssh://git@git.example.com " in command
    assert command.endswith(f"{sys.executable} -m repolink")


def test_default_shell_command_carries_the_host_storage_when_set(
    host_settings: Settings, tmp_path: Path
) -> None:
    assert "REPOLINK_HOST_STORAGE" not in default_shell_command(host_settings)
    shared = host_settings.model_copy(update={"host_storage": tmp_path / "shared storage"})
    command = default_shell_command(shared)
    assert f"'REPOLINK_HOST_STORAGE={tmp_path / 'shared storage'}'" in command
    assert command.endswith(f"{sys.executable} -m repolink")


def test_authorized_keys_command(
    host_settings: Settings, host_service: HostService, make_key: MakeKey
) -> None:
    key = make_key("person")
    info = host_service.add_account_key("team", key.public_line, label="p")
    key_type, key_base64, _ = key.public_line.split()
    known = _repolink(host_settings, "host", "authorized-keys", "git", key_type, key_base64)
    assert known.returncode == 0, known.stderr
    [line] = known.stdout.splitlines()
    assert line.startswith("restrict,command=")
    assert line.endswith(f'host shell key-account-{info.id}" {key_type} {key_base64}')
    assert f"REPOLINK_DATA_DIR={host_settings.resolved_data_dir}" in line

    stranger = make_key("stranger").public_line.split()
    unknown = _repolink(host_settings, "host", "authorized-keys", "git", stranger[0], stranger[1])
    assert (unknown.returncode, unknown.stdout) == (0, "")
    other_user = _repolink(host_settings, "host", "authorized-keys", "root", key_type, key_base64)
    assert (other_user.returncode, other_user.stdout) == (0, "")

    # The address clients reach sshd at travels into the forced command; a wrong one is
    # refused with one line, and no key is let in.
    url = "ssh://git@git.example.com:2222"
    args = ("host", "authorized-keys", "git", key_type, key_base64)
    with_url = _repolink(host_settings, *args, env={"REPOLINK_OPENSSH_URL": url})
    assert with_url.returncode == 0, with_url.stderr
    assert f"REPOLINK_OPENSSH_URL={url} " in with_url.stdout
    wrong = _repolink(host_settings, *args, env={"REPOLINK_OPENSSH_URL": f"{url}/team"})
    assert (wrong.returncode, wrong.stdout) == (2, "")
    assert "REPOLINK_OPENSSH_URL" in wrong.stderr and "Traceback" not in wrong.stderr


# -- shell, run directly as sshd would -------------------------------------------------------


def test_shell_refusals(
    host_settings: Settings,
    host_service: HostService,
    make_key: MakeKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = Repolink(host_settings)
    host_service.create_repository("team", "app")
    host_service.create_repository("team", "other")
    reader = host_service.add_access_key("team", "app", make_key("r").public_line, label="r")
    token = f"key-access-{reader.id}"
    cases = {
        "bash": "only git-upload-pack",
        "git-upload-pack '--help'": "a repository path looks like",
        "git-upload-pack 'team/app.git' 'x'": "exactly one repository path",
        "git-upload-pack 'team/other.git'": "repository team/other not found",
        "git-receive-pack 'team/app.git'": "this access key is read-only",
        None: "interactive shells are not provided",
    }
    for command, message in cases.items():
        assert run_shell(app, token, command, {}) == 1, command
        captured = capsys.readouterr()
        assert captured.out == ""
        [line] = captured.err.splitlines()
        assert line.startswith("repolink: ") and message in line, line

    host_service.remove_access_key("team", "app", reader.id)
    assert run_shell(app, token, "git-upload-pack 'team/app'", {}) == 1
    assert "this key is not registered on this host" in capsys.readouterr().err
    assert run_shell(app, "key-nonsense", "git-upload-pack 'team/app'", {}) == 1
    assert "key-access-ID" in capsys.readouterr().err
    app.close()


def test_shell_command_execs_git_for_a_granted_read(
    host_settings: Settings, host_service: HostService, make_key: MakeKey, tmp_path: Path
) -> None:
    info = host_service.create_repository("team", "app")
    reader = host_service.add_access_key("team", "app", make_key("r").public_line, label="r")
    env = {**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    env.update(GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@x", GIT_COMMITTER_NAME="a")
    env.update(GIT_COMMITTER_EMAIL="a@x")
    [commit] = make_source_repository(tmp_path / "source", env, commits=1)
    bare = host_service.repository_path(info)
    subprocess.run(
        ["git", "push", "-q", str(bare), "main"], cwd=tmp_path / "source", env=env, check=True
    )

    result = _repolink(
        host_settings,
        "host",
        "shell",
        f"key-access-{reader.id}",
        env={"SSH_ORIGINAL_COMMAND": "git-upload-pack '/team/app.git'"},
        input="0000",
    )
    assert result.returncode == 0, result.stderr
    assert f"{commit} refs/heads/main" in result.stdout  # git's own v0 advertisement
    assert host_service.get_access_key("team", "app", reader.id).last_used is not None

    refused = _repolink(
        host_settings,
        "host",
        "shell",
        f"key-access-{reader.id}",
        env={"SSH_ORIGINAL_COMMAND": "git-receive-pack '/team/app.git'"},
    )
    assert refused.returncode == 1  # the status reaches sshd
    assert "read-only" in refused.stderr


# -- behind a real OpenSSH sshd ---------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]
    arrived: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.headers.get("X-Event-Key", ""), body))
        self.arrived.set()
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass
class SshdWorld:
    sshd: SshdHost
    keys: dict[str, KeyPair]
    root: Path
    receiver: type[_Receiver]

    def client(self, key_name: str) -> GitClient:
        return GitClient(
            self.root / "homes" / key_name,
            self.keys[key_name],
            self.sshd.known_hosts,
            self.sshd.port,
            user=self.sshd.login_user,
        )

    def url(self, key_name: str, path: str) -> str:
        return self.client(key_name).url(path)


@pytest.fixture(scope="module")
def sshd_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdWorld]:
    require_sshd()
    root = tmp_path_factory.mktemp("sshd-host")
    login_user = choose_login_user()
    data_dir = new_data_dir(root, login_user)
    settings = Settings(data_dir=data_dir)

    receiver = type("Receiver", (_Receiver,), {"received": [], "arrived": threading.Event()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    names = ["account", "read_only", "unknown", "other_repo"]
    keys = {name: generate_key_pair(root / "keys", name) for name in names}
    with Store.open(settings) as store:
        service = HostService(settings, store, runner=HardenedRunner())
        service.create_repository("team", "app")
        service.create_repository("team", "other")
        service.add_account_key("team", keys["account"].public_line, label="developer")
        service.add_access_key("team", "app", keys["read_only"].public_line, label="ci")
        service.add_access_key("team", "other", keys["other_repo"].public_line, label="o")
        try:
            from repolink.host.hooks import HookService
        except ImportError:
            pass
        else:
            HookService(settings, store, service).add_hook(
                "team", "app", f"http://127.0.0.1:{httpd.server_address[1]}/hook"
            )
    hand_over(data_dir, login_user)
    try:
        with run_sshd(root / "sshd", data_dir, login_user) as sshd:
            yield SshdWorld(sshd, keys, root, receiver)
    finally:
        httpd.shutdown()
        if login_user != "root":
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.sshd
def test_openssh_mode_clone_push_and_webhook(sshd_world: SshdWorld) -> None:
    client = sshd_world.client("account")
    source = sshd_world.root / "source"
    commits = make_source_repository(source, client.env(), commits=2)
    pushed = client.git("push", client.url("team/app.git"), "main:main", cwd=source)
    assert pushed.returncode == 0, pushed.stderr + sshd_world.sshd.log()

    clone = sshd_world.root / "clone"
    cloned = subprocess.run(
        ["git", "-c", "protocol.version=2", "clone", client.url("team/app.git"), str(clone)],
        env={**client.env(), "GIT_TRACE_PACKET": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cloned.returncode == 0, cloned.stderr
    assert "< version 2" in cloned.stderr  # GIT_PROTOCOL went through sshd (AcceptEnv)
    head = client.git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    assert head == commits[-1]

    try:
        from repolink.host import webhooks  # noqa: F401
    except ImportError:
        return
    # Other tests of this module push too: find this push's delivery among them.
    deadline = time.monotonic() + 30
    while not any(commits[-1].encode() in body for _, body in sshd_world.receiver.received):
        assert time.monotonic() < deadline, "no webhook delivery after the push"
        time.sleep(0.05)
    [(event, body)] = [
        (event, body)
        for event, body in sshd_world.receiver.received
        if commits[-1].encode() in body
    ]
    assert event == "repo:push"
    # The payload's clone link is the address sshd is reached at (REPOLINK_OPENSSH_URL).
    assert f'"href":"{client.url("team/app.git")}"'.encode() in body


@pytest.mark.sshd
def test_openssh_mode_refusals(sshd_world: SshdWorld, tmp_path: Path) -> None:
    reader = sshd_world.client("read_only")
    assert reader.git("ls-remote", reader.url("team/app.git")).returncode == 0
    make_source_repository(tmp_path / "work", reader.env(), commits=1)
    refused = reader.git(
        "push", reader.url("team/app.git"), "HEAD:refs/heads/x", cwd=tmp_path / "work"
    )
    assert "this access key is read-only" in refused.stderr

    other = sshd_world.client("other_repo")
    not_granted = other.git("ls-remote", other.url("team/app.git"))
    assert not_granted.returncode != 0
    assert "repository team/app not found" in not_granted.stderr

    unknown = sshd_world.client("unknown")
    denied = unknown.git("ls-remote", unknown.url("team/app.git"))
    assert denied.returncode != 0
    assert "Permission denied (publickey)" in denied.stderr

    account = sshd_world.client("account")
    shell = account.ssh("bash", "RequestTTY=no")
    assert shell.returncode == 1
    assert "repolink: only git-upload-pack" in shell.stderr
    assert "PTY allocation request failed" in account.ssh("bash", "RequestTTY=force").stderr


def _connect(app: Repolink, world: SshdWorld, project: str, repository: str) -> None:
    """Project ``project`` connected through sshd to ``team/<repository>`` with a generated
    deploy key, granted there as a read-only access key before the first fetch."""
    app.projects.create_project(project, slug=project)

    def grant(connection: ConnectionInfo) -> None:
        line = connection.deploy_key.public_key
        app.host.add_access_key("team", repository, line, label=project)

    url = f"ssh://{world.sshd.login_user}@127.0.0.1:{world.sshd.port}/team/{repository}.git"
    outcome = app.connections.connect(project, url, before_fetch=grant)
    assert outcome.error is None, outcome.error.one_line() + world.sshd.log()


@pytest.mark.sshd
def test_openssh_mode_push_fetches_the_projects_connected_to_the_repository(
    sshd_world: SshdWorld,
) -> None:
    """Issue 11 §6 in OpenSSH mode: the platform on sshd's own data directory lists a pushed
    commit with no fetch asked for; a project of another repository gets no fetch."""
    client = sshd_world.client("account")
    source = sshd_world.root / "source-fetched"
    branch = "fetched-after-push"
    make_source_repository(source, client.env(), commits=1)
    for repository in ("app", "other"):
        pushed = client.git(
            "push", client.url(f"team/{repository}.git"), f"main:{branch}", cwd=source
        )
        assert pushed.returncode == 0, pushed.stderr + sshd_world.sshd.log()

    data_dir = sshd_world.sshd.data_dir
    with Repolink(Settings(data_dir=data_dir, git_timeout=120)) as app:
        host_key = sshd_world.sshd.known_hosts.read_text().split()
        with app.store.session() as session:
            knownhosts.trust(
                session,
                "127.0.0.1",
                sshd_world.sshd.port,
                host_key_from_line(" ".join(host_key[1:3])).sha256_fingerprint,
                scanner=keyscan.scanner_for(app.settings, app.runner),
            )
        _connect(app, sshd_world, "pushed-to", "app")
        _connect(app, sshd_world, "elsewhere", "other")
        hand_over(data_dir, sshd_world.sshd.login_user)  # what this process wrote, to sshd's user

        (source / "after.txt").write_text("after the projects connected\n")
        for args in (["add", "after.txt"], ["commit", "-q", "-m", "after connecting"]):
            assert client.git(*args, cwd=source).returncode == 0
        sha = client.git("rev-parse", "HEAD", cwd=source).stdout.strip()
        pushed = client.git("push", client.url("team/app.git"), f"main:{branch}", cwd=source)
        assert pushed.returncode == 0, pushed.stderr + sshd_world.sshd.log()

        deadline = time.monotonic() + 120
        while not [run for run in app.fetch_requests.history("pushed-to") if run.finished]:
            assert time.monotonic() < deadline, "the push's fetch never finished"
            time.sleep(0.1)
        runs = app.fetch_requests.history("pushed-to")
        assert [(run.trigger, run.state, run.new_commits) for run in runs] == [("push", "done", 1)]
        newest = app.commits.list_commits("pushed-to", limit=1).commits
        assert [commit.sha for commit in newest] == [sha]
        # The push's queueing is over (its run was done): the other project got nothing.
        assert app.fetch_requests.history("elsewhere") == []
