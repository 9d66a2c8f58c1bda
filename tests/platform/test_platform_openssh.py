"""The platform against OpenSSH ``sshd`` serving the built-in host in OpenSSH mode.

The same flows as against the embedded host (issue 4 §7), with the real sshd as the peer:
``AuthorizedKeysCommand`` is ``repolink host authorized-keys`` and every session runs
``repolink host shell`` as its forced command. Each connection starts Python twice, so this
module keeps to one sshd and few connections.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostkit import GitClient, KeyPair, generate_key_pair, make_source_repository
from sshdkit import SshdHost, choose_login_user, hand_over, new_data_dir, require_sshd, run_sshd

from repolink import hostkeys
from repolink.host.service import HostService
from repolink.hostkeys.values import host_key_from_line
from repolink.keys import PrivateKey, generate_key
from repolink.platform.commits import list_commits
from repolink.platform.connect import ConnectOutcome, connect_repository
from repolink.platform.connections import ConnectionInfo
from repolink.platform.doctor import CHECKS, doctor_project
from repolink.platform.fetch import fetch_project
from repolink.platform.projects import create_project
from repolink.settings import Settings
from repolink.store import Store

# Each connection starts Python twice on the host side: about a minute and a half in all.
pytestmark = [pytest.mark.sshd, pytest.mark.slow]

WORKSPACE = "team"
SOURCE_COMMITS = 4


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
            yield HostService(self.settings, store)
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
        with Store.open(self.settings) as store:
            service = HostService(self.settings, store)
            path = service.repository_path(service.get_repository(WORKSPACE, repository))
        out = subprocess.run(
            ["git", f"--git-dir={path}", "rev-list", "--all"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split()


@pytest.fixture(scope="module")
def openssh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSSHHost]:
    require_sshd()
    root = tmp_path_factory.mktemp("openssh-platform")
    login_user = choose_login_user()
    data_dir = new_data_dir(root, login_user)
    settings = Settings(data_dir=data_dir)
    account: KeyPair = generate_key_pair(root / "keys", "account")
    with Store.open(settings) as store:
        service = HostService(settings, store)
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
        with self.store.session() as session:
            create_project(session, slug, slug=slug)

        def add_access_key(connection: ConnectionInfo) -> None:
            if grant is not None:
                grant.grant("app", connection.deploy_key.public_key, label=slug)

        return connect_repository(
            self.store, self.settings, slug, url, key=key, before_fetch=add_access_key
        )


@pytest.fixture
def platform_side(tmp_path: Path, openssh: OpenSSHHost) -> Iterator[PlatformSide]:
    """A platform data directory that trusts sshd's host key (checked by fingerprint)."""
    settings = Settings(data_dir=tmp_path / "platform", git_timeout=120, ssh_connect_timeout=10)
    fields = openssh.sshd.known_hosts.read_text().split()
    fingerprint = host_key_from_line(" ".join(fields[1:3])).sha256_fingerprint
    with Store.open(settings) as store:
        with store.session() as session:
            hostkeys.trust(
                session,
                "127.0.0.1",
                openssh.sshd.port,
                fingerprint,
                scanner=hostkeys.scanner_for(settings),
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

    refreshed = fetch_project(platform_side.store, platform_side.settings, "flow")
    assert refreshed.skipped and refreshed.new_commits == 0

    sha = openssh.push_commit("pushed through sshd")
    refetched = fetch_project(platform_side.store, platform_side.settings, "flow")
    assert not refetched.skipped and refetched.new_commits == 1
    with platform_side.store.session() as session:
        newest = list_commits(session, platform_side.settings, "flow", limit=1).commits
    assert [commit.sha for commit in newest] == [sha]

    # The doctor agrees: every check passes behind sshd's forced command too.
    report = doctor_project(platform_side.store, platform_side.settings, "flow")
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
