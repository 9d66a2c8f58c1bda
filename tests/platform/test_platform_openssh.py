"""The platform against OpenSSH ``sshd`` serving the built-in host in OpenSSH mode.

The same flows as against the embedded host (issue 4 §7), with the real sshd as the peer:
``AuthorizedKeysCommand`` is ``repolink host authorized-keys`` and every session runs
``repolink host shell`` as its forced command. Each connection starts Python twice, so this
module keeps to one sshd and few connections.

Which key sshd accepted is read from sshd's own log (``Accepted publickey … SHA256:…``): the
peer, not the platform, says which key authenticated. Generate-and-register talks to the
host's HTTP API served by ``repolink host serve`` over sshd's data directory, run as sshd's
login user so that every file it creates stays usable by sshd's sessions.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from repolink import knownhosts
from repolink.app import Repolink
from repolink.errors import FetchError, RepolinkError
from repolink.git import keyscan
from repolink.git.runner import HardenedRunner
from repolink.host.info import AccessKeyInfo
from repolink.host.service import HostService
from repolink.keys import PrivateKey, generate_key
from repolink.knownhosts.values import host_key_from_line
from repolink.platform.connect import ConnectOutcome
from repolink.platform.connections import ConnectionInfo, import_private_key
from repolink.platform.doctor import CHECKS
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.models import KeyRecord
from support.hostkit import GitClient, KeyPair, generate_key_pair, make_source_repository
from support.postgres import database_env
from support.sshdkit import (
    SshdHost,
    choose_login_user,
    hand_over,
    new_data_dir,
    require_sshd,
    run_sshd,
)

# Each connection starts Python twice on the host side: about two minutes in all.
pytestmark = [pytest.mark.sshd, pytest.mark.slow]

WORKSPACE = "team"
SOURCE_COMMITS = 4
PASSPHRASE = "correct horse battery"
API_TOKEN = "openssh-platform-test-admin-token"
REPOLINK = [sys.executable, "-m", "repolink"]
SERVE_START_TIMEOUT = 60.0
_API_ADDRESS = re.compile(r"HTTP API on (http://127\.0\.0\.1:\d+)/host/api/2\.0")
_ACCEPTED = re.compile(r"Accepted publickey for \S+ from \S+ port \d+ ssh2: \S+ (SHA256:\S+)")


@dataclass
class OpenSSHHost:
    """sshd in OpenSSH mode over a host data directory with ``team/app`` and ``team/other``."""

    sshd: SshdHost
    settings: Settings
    account: GitClient
    source: Path

    @contextlib.contextmanager
    def service(self) -> Iterator[HostService]:
        """The host's service, for setup; the data directory goes back to sshd's login user."""
        with Store.open(self.settings) as store:
            yield HostService(self.settings, store, runner=HardenedRunner())
        hand_over(self.settings.data_dir, self.sshd.login_user)

    def grant(self, repository: str, public_line: str, label: str) -> None:
        with self.service() as service:
            service.add_access_key(WORKSPACE, repository, public_line, label=label)

    def url(self, repository: str) -> str:
        return (
            f"ssh://{self.sshd.login_user}@127.0.0.1:{self.sshd.port}/{WORKSPACE}/{repository}.git"
        )

    def push_commit(self, message: str) -> str:
        """One new commit on main, pushed with the developer's account key; its sha."""
        (self.source / "changes.txt").write_text(message + "\n")
        for args in (["add", "changes.txt"], ["commit", "-q", "-m", message]):
            done = self.account.git(*args, cwd=self.source)
            assert done.returncode == 0, done.stderr
        pushed = self.account.git(
            "push", self.account.url("team/app.git"), "main:main", cwd=self.source
        )
        assert pushed.returncode == 0, pushed.stderr + self.sshd.log()
        return self.account.git("rev-parse", "HEAD", cwd=self.source).stdout.strip()

    def commits(self, repository: str) -> list[str]:
        with self.service() as service:
            path = service.repository_path(service.get_repository(WORKSPACE, repository))
        out = subprocess.run(
            ["git", f"--git-dir={path}", "rev-list", "--all"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split()

    def accepted_fingerprints(self) -> list[str]:
        """The key fingerprints sshd accepted so far, in order, from its own log."""
        return _ACCEPTED.findall(self.sshd.log())

    def access_keys(self, repository: str) -> dict[str, AccessKeyInfo]:
        """The access keys of ``team/<repository>``, by SHA-256 fingerprint."""
        with self.service() as service:
            keys = service.list_access_keys(WORKSPACE, repository)
        return {key.fingerprint_sha256: key for key in keys}

    def revoke(self, repository: str, fingerprint: str) -> None:
        key = self.access_keys(repository)[fingerprint]
        with self.service() as service:
            service.remove_access_key(WORKSPACE, repository, key.id)


@pytest.fixture(scope="module")
def openssh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSSHHost]:
    require_sshd()
    root = tmp_path_factory.mktemp("openssh-platform")
    login_user = choose_login_user()
    data_dir = new_data_dir(root, login_user)
    settings = Settings(data_dir=data_dir)
    account: KeyPair = generate_key_pair(root / "keys", "account")
    with Store.open(settings) as store:
        service = HostService(settings, store, runner=HardenedRunner())
        for repository in ("app", "other"):
            service.create_repository(WORKSPACE, repository)
        service.add_account_key(WORKSPACE, account.public_line, label="developer")
    hand_over(data_dir, login_user)
    try:
        with run_sshd(root / "sshd", data_dir, login_user) as sshd:
            client = GitClient(
                root / "homes" / "account", account, sshd.known_hosts, sshd.port, user=login_user
            )
            source = root / "source"
            make_source_repository(source, client.env(), commits=SOURCE_COMMITS)
            for repository in ("app", "other"):
                pushed = client.git(
                    "push", client.url(f"team/{repository}.git"), "main:main", cwd=source
                )
                assert pushed.returncode == 0, pushed.stderr + sshd.log()
            yield OpenSSHHost(sshd, settings, client, source)
    finally:
        if login_user != "root":
            shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class PlatformSide:
    settings: Settings
    store: Store

    @functools.cached_property
    def app(self) -> Repolink:
        return Repolink(self.settings, store=self.store)

    def connect(
        self,
        slug: str,
        url: str,
        key: PrivateKey | None = None,
        *,
        grant: OpenSSHHost | None = None,
    ) -> ConnectOutcome:
        """Connect project ``slug``; with ``grant``, the (generated) deploy key is first added
        as a read-only access key of ``team/app`` through the host's service."""
        self.app.projects.create_project(slug, slug=slug)

        def add_access_key(connection: ConnectionInfo) -> None:
            if grant is not None:
                grant.grant("app", connection.deploy_key.public_key, label=slug)

        return self.app.connections.connect(slug, url, key=key, before_fetch=add_access_key)


@pytest.fixture
def platform_side(tmp_path: Path, openssh: OpenSSHHost) -> Iterator[PlatformSide]:
    """A platform data directory that trusts sshd's host key (checked by fingerprint)."""
    settings = Settings(data_dir=tmp_path / "platform", git_timeout=120, ssh_connect_timeout=10)
    fields = openssh.sshd.known_hosts.read_text().split()
    fingerprint = host_key_from_line(" ".join(fields[1:3])).sha256_fingerprint
    with Store.open(settings) as store:
        with store.session() as session:
            knownhosts.trust(
                session,
                "127.0.0.1",
                openssh.sshd.port,
                fingerprint,
                scanner=keyscan.scanner_for(settings, HardenedRunner()),
            )
        yield PlatformSide(settings, store)


def test_generate_register_fetch_refresh_and_new_commit(
    openssh: OpenSSHHost, platform_side: PlatformSide
) -> None:
    outcome = platform_side.connect("flow", openssh.url("app"), grant=openssh)

    assert outcome.error is None, outcome.error and outcome.error.one_line()
    assert outcome.generated and outcome.connection.state == "ok"
    assert outcome.fetch is not None and not outcome.fetch.skipped
    assert outcome.fetch.new_commits == len(openssh.commits("app"))

    refreshed = platform_side.app.fetches.fetch_project("flow")
    assert refreshed.skipped and refreshed.new_commits == 0

    sha = openssh.push_commit("pushed through sshd")
    refetched = platform_side.app.fetches.fetch_project("flow")
    assert not refetched.skipped and refetched.new_commits == 1
    newest = platform_side.app.commits.list_commits("flow", limit=1).commits
    assert [commit.sha for commit in newest] == [sha]

    # The doctor agrees: every check passes behind sshd's forced command too.
    app = Repolink(platform_side.settings, store=platform_side.store)
    report = app.doctor.check_project("flow")
    assert [check.status for check in report.checks] == ["passed"] * len(CHECKS), report.failure
    assert report.checks[CHECKS.index("host_key")].detail.startswith("SSH-2.0-OpenSSH_")


def test_wrong_key_is_auth_failed(openssh: OpenSSHHost, platform_side: PlatformSide) -> None:
    key = generate_key()
    outcome = platform_side.connect("stranger", openssh.url("app"), key)

    assert outcome.error is not None and outcome.error.code == "auth_failed"
    assert key.public_key.sha256_fingerprint in outcome.error.message
    assert key.public_key.openssh_line(with_comment=False) in outcome.error.hint
    assert outcome.connection.state == "failed"


def test_key_of_another_repository_is_repo_not_found(
    openssh: OpenSSHHost, platform_side: PlatformSide
) -> None:
    key = generate_key()
    openssh.grant("other", key.public_key.openssh_line(), label="elsewhere")
    outcome = platform_side.connect("elsewhere", openssh.url("app"), key)

    assert outcome.error is not None and outcome.error.code == "repo_not_found"
    assert "team/app" in outcome.error.message


def _deploy_key(platform_side: PlatformSide, project: str) -> str:
    return platform_side.app.connections.connection_info(project).deploy_key.fingerprint_sha256


def _key_record(platform_side: PlatformSide, fingerprint: str) -> KeyRecord:
    with platform_side.store.session() as session:
        record = session.scalar(
            select(KeyRecord).where(KeyRecord.fingerprint_sha256 == fingerprint)
        )
        assert record is not None, fingerprint
        return record


# --- every key format the foundation reads, made by the real ssh-keygen ------------------------


@dataclass(frozen=True)
class KeyFormat:
    name: str
    keygen_args: tuple[str, ...]
    passphrase: str | None
    marker: str
    """Text only this format's file holds: proof ssh-keygen wrote the format we meant."""
    key_type: str


KEY_FORMATS = [
    KeyFormat("openssh", ("-t", "ed25519"), None, "BEGIN OPENSSH PRIVATE KEY", "ssh-ed25519"),
    KeyFormat(
        "openssh-encrypted",
        ("-t", "ed25519"),
        PASSPHRASE,
        "BEGIN OPENSSH PRIVATE KEY",
        "ssh-ed25519",
    ),
    KeyFormat(
        "pkcs1-rsa",
        ("-t", "rsa", "-b", "2048", "-m", "PEM"),
        None,
        "BEGIN RSA PRIVATE KEY",
        "ssh-rsa",
    ),
    KeyFormat(
        "pkcs1-rsa-encrypted",
        ("-t", "rsa", "-b", "2048", "-m", "PEM"),
        PASSPHRASE,
        "Proc-Type: 4,ENCRYPTED",
        "ssh-rsa",
    ),
    KeyFormat(
        "sec1-ecdsa",
        ("-t", "ecdsa", "-b", "256", "-m", "PEM"),
        None,
        "BEGIN EC PRIVATE KEY",
        "ecdsa-sha2-nistp256",
    ),
    KeyFormat(
        "pkcs8-ecdsa",
        ("-t", "ecdsa", "-b", "384", "-m", "PKCS8"),
        None,
        "BEGIN PRIVATE KEY",
        "ecdsa-sha2-nistp384",
    ),
    KeyFormat(
        "pkcs8-rsa-encrypted",
        ("-t", "rsa", "-b", "2048", "-m", "PKCS8"),
        PASSPHRASE,
        "BEGIN ENCRYPTED PRIVATE KEY",
        "ssh-rsa",
    ),
]


def _ssh_keygen(directory: Path, fmt: KeyFormat) -> Path:
    path = directory / fmt.name
    passphrase = fmt.passphrase or ""
    subprocess.run(
        ["ssh-keygen", "-q", "-C", "", "-f", str(path), "-N", passphrase, *fmt.keygen_args],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path


@pytest.mark.parametrize("fmt", KEY_FORMATS, ids=[fmt.name for fmt in KEY_FORMATS])
def test_imported_key_of_each_format_fetches(
    openssh: OpenSSHHost, platform_side: PlatformSide, tmp_path: Path, fmt: KeyFormat
) -> None:
    path = _ssh_keygen(tmp_path, fmt)
    data = path.read_bytes()
    assert fmt.marker.encode() in data
    if fmt.passphrase is not None:
        with pytest.raises(RepolinkError) as locked:
            import_private_key(data, None)
        assert locked.value.code == "invalid_private_key"
    key = import_private_key(data, fmt.passphrase)
    assert key.public_key.key_type == fmt.key_type
    openssh.grant("app", path.with_name(fmt.name + ".pub").read_text(), label=fmt.name)

    project = f"import-{fmt.name}"
    outcome = platform_side.connect(project, openssh.url("app"), key)

    assert outcome.error is None, outcome.error and outcome.error.one_line()
    assert not outcome.generated
    assert outcome.connection.deploy_key.origin == "imported"
    assert outcome.fetch is not None
    assert outcome.fetch.new_commits == len(openssh.commits("app"))
    # sshd itself accepted exactly the key ssh-keygen made.
    fingerprint = KeyPair(path.with_name(fmt.name + ".pub"), "").fingerprint
    assert outcome.connection.deploy_key.fingerprint_sha256 == fingerprint
    assert fingerprint in openssh.accepted_fingerprints()


# --- hide and unhide ---------------------------------------------------------------------------


def test_hide_and_unhide_after_a_fetch(openssh: OpenSSHHost, platform_side: PlatformSide) -> None:
    outcome = platform_side.connect("picker", openssh.url("app"), grant=openssh)
    assert outcome.error is None, outcome.error and outcome.error.one_line()
    commits = platform_side.app.commits

    def visible(*, include_hidden: bool = False) -> list[str]:
        page = commits.list_commits("picker", include_hidden=include_hidden, limit=100)
        return [commit.sha for commit in page.commits]

    everything = visible()
    assert len(everything) == len(openssh.commits("app"))
    tip, middle = everything[0], everything[2]
    assert commits.hide_commits("picker", [tip[:10], middle]) == [tip, middle]

    assert visible() == [sha for sha in everything if sha not in (tip, middle)]
    assert visible(include_hidden=True) == everything
    refs = {ref.name: ref for ref in commits.list_refs("picker")}
    assert refs["refs/heads/main"].commit_sha == tip and refs["refs/heads/main"].hidden

    # A later fetch through sshd indexes the new commit and keeps the hidden ones hidden.
    newer = openssh.push_commit("after hiding")
    assert platform_side.app.fetches.fetch_project("picker").new_commits == 1
    assert visible()[0] == newer
    assert tip not in visible() and middle not in visible()

    assert commits.unhide_commits("picker", [tip, middle]) == [tip, middle]
    assert visible() == [newer, *everything]


# --- rotation end to end -----------------------------------------------------------------------


def test_rotation_end_to_end(openssh: OpenSSHHost, platform_side: PlatformSide) -> None:
    store, settings = platform_side.store, platform_side.settings
    deploy_keys = Repolink(settings, store=store).deploy_keys
    outcome = platform_side.connect("rotation", openssh.url("app"), grant=openssh)
    assert outcome.error is None, outcome.error and outcome.error.one_line()
    key_a = outcome.connection.deploy_key.fingerprint_sha256

    started = deploy_keys.start_rotation("rotation")
    key_b = started.rotation.new_key.fingerprint_sha256
    assert key_b != key_a and started.rotation.current_key.fingerprint_sha256 == key_a

    # B is not on the repository yet: completing fails with sshd's refusal, nothing changes.
    with pytest.raises(FetchError) as refused:
        deploy_keys.complete_rotation("rotation")
    assert refused.value.code == "auth_failed"
    assert key_b in refused.value.message
    assert key_b not in openssh.accepted_fingerprints()
    assert _deploy_key(platform_side, "rotation") == key_a
    still = deploy_keys.pending_rotation("rotation")
    assert still is not None and still.new_key.fingerprint_sha256 == key_b
    assert _key_record(platform_side, key_a).retired_at is None
    assert _key_record(platform_side, key_a).private_key_encrypted is not None

    # A keeps working meanwhile: a new commit arrives with it.
    openssh.push_commit("while key B is pending")
    assert platform_side.app.fetches.fetch_project("rotation").new_commits == 1
    assert _key_record(platform_side, key_b).last_used_at is None

    # B granted as an access key: completing fetches with B (sshd accepts B), then swaps.
    openssh.grant("app", started.rotation.new_key.public_key, label="rotation B")
    openssh.push_commit("fetched with key B")
    completed = deploy_keys.complete_rotation("rotation")

    assert key_b in openssh.accepted_fingerprints()
    assert completed.fetch.new_commits == 1
    assert completed.deploy_key.fingerprint_sha256 == key_b
    assert completed.retired_key.fingerprint_sha256 == key_a
    assert _deploy_key(platform_side, "rotation") == key_b
    old = _key_record(platform_side, key_a)
    assert old.retired_at is not None and old.private_key_encrypted is None
    assert _key_record(platform_side, key_b).last_used_at is not None
    assert deploy_keys.pending_rotation("rotation") is None

    # A revoked on the host: fetches go on with B.
    openssh.revoke("app", key_a)
    assert key_a not in openssh.access_keys("app") and key_b in openssh.access_keys("app")
    last = openssh.push_commit("after A was revoked")
    assert platform_side.app.fetches.fetch_project("rotation").new_commits == 1
    newest = platform_side.app.commits.list_commits("rotation", limit=1).commits
    assert platform_side.app.connections.connection_info("rotation").state == "ok"
    assert [commit.sha for commit in newest] == [last]


# --- generate and register through the host API ------------------------------------------------


@contextlib.contextmanager
def _host_api(openssh: OpenSSHHost, work: Path) -> Iterator[str]:
    """``repolink host serve`` over sshd's data directory, as sshd's login user; yields the
    address of its HTTP API (``http://127.0.0.1:PORT``)."""
    work.mkdir(parents=True, exist_ok=True)
    out_path, err_path = work / "serve.out", work / "serve.err"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")}
    environment.update(
        HOME=str(openssh.settings.data_dir),
        REPOLINK_DATA_DIR=str(openssh.settings.data_dir),
        REPOLINK_ADMIN_TOKEN=API_TOKEN,
        **database_env(openssh.settings.data_dir),
    )
    login = pwd.getpwnam(openssh.sshd.login_user)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [*REPOLINK, "host", "serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
            env=environment,
            cwd=openssh.settings.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            user=login.pw_uid,
            group=login.pw_gid,
            extra_groups=[],
        )
    try:
        deadline = time.monotonic() + SERVE_START_TIMEOUT
        while (found := _API_ADDRESS.search(out_path.read_text())) is None:
            failed = process.poll() is not None or time.monotonic() > deadline
            assert not failed, "repolink host serve did not start:\n" + err_path.read_text()
            time.sleep(0.05)
        yield found.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _repolink(
    platform_side: PlatformSide, home: Path, *args: str, token: str
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")}
    environment.update(
        HOME=str(home),
        COLUMNS="200",
        REPOLINK_DATA_DIR=str(platform_side.settings.data_dir),
        **database_env(platform_side.settings.data_dir),
        REPOLINK_GIT_TIMEOUT="120",
        REPOLINK_HOST_API_TOKEN=token,
    )
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [*REPOLINK, *args],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_generate_and_register_on_host_through_its_http_api(
    openssh: OpenSSHHost, platform_side: PlatformSide, tmp_path: Path
) -> None:
    for project in ("registered", "wrong-token"):
        platform_side.app.projects.create_project(project, slug=project)
    before = openssh.access_keys("app")

    with _host_api(openssh, tmp_path / "serve") as api:
        refused = _repolink(
            platform_side,
            tmp_path / "home",
            *("repo", "connect", "wrong-token", openssh.url("app"), "--generate"),
            *("--register-on-host", "--host-api", api),
            token="not-" + API_TOKEN,
        )
        done = _repolink(
            platform_side,
            tmp_path / "home",
            *("repo", "connect", "registered", openssh.url("app"), "--generate"),
            *("--register-on-host", "--host-api", api),
            token=API_TOKEN,
        )

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "error: host_api_unauthorized:" in refused.stderr
    assert "repolink repo register wrong-token" in refused.stderr
    assert done.returncode == 0, done.stdout + done.stderr + openssh.sshd.log()[-2000:]
    assert "registered as a read-only access key of" in done.stdout
    assert done.stdout.strip().endswith(f"{len(openssh.commits('app'))} new commits")
    for run in (refused, done):
        assert API_TOKEN not in run.stdout + run.stderr

    info = platform_side.app.connections.connection_info("registered")
    assert info.state == "ok" and info.deploy_key.origin == "generated"
    fingerprint = info.deploy_key.fingerprint_sha256
    added = {fp: key for fp, key in openssh.access_keys("app").items() if fp not in before}
    # Only the good token's key was added, read-only, under the CLI's label; sshd accepted it.
    assert list(added) == [fingerprint]
    assert (added[fingerprint].label, added[fingerprint].read_only) == ("repolink registered", True)
    assert fingerprint in openssh.accepted_fingerprints()
