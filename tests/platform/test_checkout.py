"""``checkout``: the tree of one commit from the mirror, its submodules fetched over real SSH
from the built-in host with the key the key rules pick.

The hosted repositories get their test commits written straight into their bare repositories
(plumbing, no push), so that commits the host's own ``receive.fsckObjects`` would refuse — a
``.gitmodules`` URL starting with ``-``, a tree holding ``.git`` — can be served to repolink.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from repolink import cli as cli_root
from repolink import knownhosts
from repolink.app import Repolink
from repolink.errors import RepolinkError
from repolink.git import keyscan
from repolink.git.mirrors import mirror_path
from repolink.git.runner import HardenedRunner
from repolink.hints import command_hint
from repolink.host.service import HostService
from repolink.keys import PrivateKey, generate_key
from repolink.knownhosts.values import host_key_from_line
from repolink.platform.additional_keys import AdditionalKeyInfo
from repolink.platform.checkout import MAX_SUBMODULE_DEPTH, CheckoutResult
from repolink.platform.key_rules import SOURCE_ADDITIONAL_KEY, SOURCE_KEY_RULE
from repolink.platform.submodule_plan import resolve_submodule_url
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.key_records import get_key_record
from repolink.urls import parse_ssh_url
from support.hostkit import GitClient, generate_key_pair, make_source_repository
from support.platformkit import WORKSPACE, HostedRepo, HostedRepos, Platform, granted_key
from support.recording import RecordedRun, RecordingRunner
from support.sshdkit import choose_login_user, hand_over, new_data_dir, require_sshd, run_sshd

PROJECT = "sup"
ELSEWHERE = "git.example.com"  # a host name no test URL has
# A URL starting with "-" (--upload-pack=…) never reaches a checkout: the mirror's fetch runs
# fsck, which refuses it (gitmodulesUrl) as invalid_object; see test_platform_errors.
REFUSED_URLS = {
    "file": ("file:///etc", "url_file"),
    "ext": ("ext::sh -c id", "url_transport"),
    "local": ("/srv/git/other.git", "url_local_path"),
    "https": ("https://github.com/team/other.git", "url_https"),
    "climb": ("../../../../etc.git", "url_dot_segments"),
    "dots": ("../x/../../y.git", "url_dot_segments"),
}


# -- the hosted repositories ------------------------------------------------------------------


def _env(home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
        **extra,
    }


@dataclass
class Builder:
    """Writes commits straight into a hosted bare repository."""

    git_dir: Path
    work: Path

    def git(self, *args: str, input: bytes | None = None, index: Path | None = None) -> str:
        extra = {"GIT_INDEX_FILE": str(index)} if index is not None else {}
        done = subprocess.run(
            ["git", f"--git-dir={self.git_dir}", *args],
            input=input,
            capture_output=True,
            env=_env(self.work / "home", **extra),
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode().strip()

    def commit(
        self,
        branch: str,
        *,
        gitmodules: str | None = None,
        links: dict[str, str] | None = None,
        tree: str | None = None,
        base: str = "main",
        ref: str | None = None,
    ) -> str:
        """A commit on ``branch`` (or at ``ref``): ``base``'s tree plus ``.gitmodules`` and
        gitlinks, or exactly ``tree``."""
        if tree is None:
            index = self.work / f"index-{branch}"
            index.unlink(missing_ok=True)
            self.git("read-tree", base, index=index)
            if gitmodules is not None:
                blob = self.git("hash-object", "-w", "--stdin", input=gitmodules.encode())
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},.gitmodules",
                         index=index)  # fmt: skip
            for path, sha in (links or {}).items():
                self.git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}",
                         index=index)  # fmt: skip
            tree = self.git("write-tree", index=index)
        sha = self.git("commit-tree", tree, "-p", base, "-m", f"test commit {branch}")
        self.git("update-ref", ref or f"refs/heads/{branch}", sha)
        return sha

    def bad_tree(self) -> str:
        """A tree with a ``.git`` directory in it: fsck's ``hasDotgit``."""
        blob = self.git("hash-object", "-w", "--stdin", input=b"[core]\n\tbare = false\n")
        inner = self.git("mktree", input=f"100644 blob {blob}\tconfig\n".encode())
        return self.git(
            "mktree", input=f"040000 tree {inner}\t.git\n100644 blob {blob}\tok.txt\n".encode()
        )


def _gitmodules(path: str, url: str, name: str = "other", **extra: str) -> str:
    lines = [f'[submodule "{name}"]', f"\tpath = {path}", f"\turl = {url}"]
    lines += [f"\t{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Scenario:
    app_main: str
    app_inner: str  # the app commit nested inside "other" at branch "nested"
    other_pinned: str  # other's main~1: no ref points at it
    other_url: str
    commits: dict[str, str]  # app branch → commit


@pytest.fixture(scope="module")
def scenario(hosted: HostedRepos, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    work = tmp_path_factory.mktemp("builder")
    app, other = Builder(hosted.app.path, work), Builder(hosted.other.path, work)
    other_url = hosted.other.url()
    app_inner = app.git("rev-parse", "main~5")
    other_pinned = other.git("rev-parse", "main~1")
    other_nested = other.commit(
        "nested", gitmodules=_gitmodules("inner/app", "../app.git", name="app"),
        links={"inner/app": app_inner},
    )  # fmt: skip
    # Not on a branch: only a fetch of this very commit gets it.
    other_evil = other.commit("evil", tree=other.bad_tree(), ref="refs/keep/evil")
    relative = _gitmodules("libs/other", "../other.git")
    commits = {
        "with-sub": app.commit("with-sub", gitmodules=relative, links={"libs/other": other_pinned}),
        "nested": app.commit(
            "nested",
            gitmodules=_gitmodules("libs/other", other_url),
            links={"libs/other": other_nested},
        ),
        "evil": app.commit("evil", gitmodules=relative, links={"libs/other": other_evil}),
        "missing-commit": app.commit(
            "missing-commit", gitmodules=relative, links={"libs/other": "1" * 40}
        ),
        "no-gitmodules": app.commit("no-gitmodules", links={"libs/other": other_pinned}),
        "update-none": app.commit(
            "update-none",
            gitmodules=_gitmodules("libs/other", "../other.git", update="none"),
            links={"libs/other": other_pinned},
        ),
    }
    for name, (url, _reason) in REFUSED_URLS.items():
        commits[f"bad-{name}"] = app.commit(
            f"bad-{name}",
            # A harmless first submodule: nothing is fetched before every URL is checked.
            gitmodules=_gitmodules("a/first", "../other.git", name="first")
            + _gitmodules("libs/other", url),
            links={"a/first": other_pinned, "libs/other": other_pinned},
        )
    return Scenario(app.git("rev-parse", "main"), app_inner, other_pinned, other_url, commits)


@pytest.fixture
def project(platform: Platform, hosted: HostedRepos, scenario: Scenario) -> Platform:
    """Project ``sup`` on team/app; its deploy key may read team/app only."""
    outcome = platform.connect(PROJECT, hosted.app.url(), grant_on="app")
    assert outcome.error is None, outcome.error
    return platform


def _additional(
    platform: Platform, key: PrivateKey, hostname: str = ELSEWHERE
) -> AdditionalKeyInfo:
    return platform.app.additional_keys.add_key(PROJECT, key, hostname=hostname)


def _rule(platform: Platform, prefix: str, key: str) -> None:
    platform.app.key_rules.add_rule(PROJECT, prefix, key)


def _checkout(platform: Platform, commit: str, dest: Path, **kwargs: int) -> CheckoutResult:
    return platform.app.checkouts.checkout_commit(PROJECT, commit, dest, **kwargs)


def _failure(platform: Platform, commit: str, dest: Path, **kwargs: int) -> RepolinkError:
    with pytest.raises(RepolinkError) as caught:
        _checkout(platform, commit, dest, **kwargs)
    return caught.value


def _host_file(repo: HostedRepo, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo.path}", "show", f"{commit}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# -- the main path ----------------------------------------------------------------------------


def test_submodule_from_a_second_repository_through_a_key_rule(
    project: Platform, hosted: HostedRepos, scenario: Scenario, tmp_path: Path, private_tmp: Path
) -> None:
    extra = _additional(project, granted_key(hosted.host, "other", "sup-extra"))
    _rule(project, scenario.other_url, extra.fingerprint_sha256)
    dest = tmp_path / "out" / "tree"

    result = _checkout(project, "with-sub", dest)

    commit = scenario.commits["with-sub"]
    assert result.commit == commit and result.dest == dest
    assert (dest / "file.txt").read_text() == _host_file(hosted.app, commit, "file.txt")
    assert "libs/other" in (dest / ".gitmodules").read_text()
    # The submodule's files, at the pinned commit (not other's main).
    assert (dest / "libs" / "other" / "file.txt").read_text() == "content 1\n"
    assert _host_file(hosted.other, "main", "file.txt") == "content 2\n"
    # A tree, not a repository: nothing in it for a later git command to pick up.
    assert not (dest / ".git").exists() and not (dest / "libs" / "other" / ".git").exists()
    [submodule] = result.submodules
    assert submodule.path == "libs/other" and submodule.name == "other"
    assert submodule.url == parse_ssh_url(scenario.other_url).canonical
    assert submodule.commit == scenario.other_pinned and submodule.depth == 1
    assert submodule.key.source == SOURCE_KEY_RULE
    assert submodule.key.fingerprint_sha256 == extra.fingerprint_sha256
    with project.store.session() as session:
        assert get_key_record(session, extra.key_record_id).last_used_at is not None
    # Every key file and temporary repository is gone.
    left = sorted(entry.name for entry in private_tmp.iterdir())
    assert not [name for name in left if name.startswith(("repolink-key-", "repolink-checkout-"))]


def test_without_a_rule_the_error_names_the_submodule_url_and_the_cause(
    project: Platform, hosted: HostedRepos, scenario: Scenario, tmp_path: Path
) -> None:
    _additional(project, granted_key(hosted.host, "other", "sup-unused"))  # for another host
    dest = tmp_path / "out"

    error = _failure(project, "with-sub", dest)

    # The deploy key is known to the host, but not on team/other.
    canonical = parse_ssh_url(scenario.other_url).canonical
    assert error.code == "repo_not_found"
    assert "libs/other" in error.message and canonical in error.message
    deploy = project.app.connections.connection_info(PROJECT).deploy_key.fingerprint_sha256
    assert f"the deploy key {deploy}" in error.message
    # The service names the fix; the CLI names its command for it.
    assert f"point a key rule for {canonical} at a key that may read it" in error.hint
    assert f"repolink key-rules add {PROJECT} {canonical} --key" in command_hint(error)
    assert not dest.exists(), "a failed checkout leaves nothing behind"


def test_a_rule_to_a_key_the_host_does_not_know_fails_with_auth_failed(
    project: Platform,
    scenario: Scenario,
    tmp_path: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = generate_key()
    unknown = _additional(project, key)
    _rule(project, scenario.other_url, unknown.fingerprint_sha256)
    dest = tmp_path / "empty"
    dest.mkdir()

    error = _failure(project, "with-sub", dest)

    assert error.code == "auth_failed"
    assert parse_ssh_url(scenario.other_url).canonical in error.message
    assert f"additional key {unknown.fingerprint_sha256}" in error.message
    assert unknown.public_key in error.hint
    assert dest.is_dir() and list(dest.iterdir()) == [], "emptied again, not removed"
    # No key material anywhere; no key file left behind.
    secret_lines = [line for line in key.to_openssh().decode().splitlines() if "---" not in line]
    for text in (error.one_line(), repr(error), caplog.text):
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in secret_lines)
    assert not [path for path in private_tmp.iterdir() if path.name.startswith("repolink-key-")]


def test_an_additional_key_for_the_host_serves_without_a_rule(
    project: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    extra = _additional(project, granted_key(hosted.host, "other", "sup-host"), "127.0.0.1")

    result = _checkout(project, "with-sub", tmp_path / "out")

    [submodule] = result.submodules
    assert submodule.key.source == SOURCE_ADDITIONAL_KEY
    assert submodule.key.fingerprint_sha256 == extra.fingerprint_sha256
    assert (tmp_path / "out" / "libs" / "other" / "file.txt").read_text() == "content 1\n"


def test_the_longest_prefix_decides_between_deploy_key_and_additional_key(
    project: Platform, hosted: HostedRepos, scenario: Scenario, tmp_path: Path
) -> None:
    workspace = f"ssh://git@127.0.0.1:{hosted.host.port}/{WORKSPACE}/"
    extra = _additional(project, granted_key(hosted.host, "other", "sup-longest"))
    _rule(project, workspace, "deploy")

    assert _failure(project, "with-sub", tmp_path / "first").code == "repo_not_found"

    _rule(project, scenario.other_url, extra.fingerprint_sha256)
    result = _checkout(project, "with-sub", tmp_path / "second")
    assert result.submodules[0].key.rule_prefix == parse_ssh_url(scenario.other_url).canonical


def test_nested_submodules_resolve_relative_urls_against_their_parent(
    project: Platform, hosted: HostedRepos, scenario: Scenario, tmp_path: Path
) -> None:
    extra = _additional(project, granted_key(hosted.host, "other", "sup-nested"))
    _rule(project, scenario.other_url, extra.fingerprint_sha256)
    dest = tmp_path / "out"

    result = _checkout(project, "nested", dest)

    # libs/other is team/other at "nested"; its ../app.git is team/app, read with the
    # deploy key (no rule, no additional key for this host).
    inner = dest / "libs" / "other" / "inner" / "app" / "file.txt"
    assert inner.read_text() == _host_file(hosted.app, scenario.app_inner, "file.txt")
    assert inner.read_text() != _host_file(hosted.app, "main", "file.txt")
    assert [(sub.path, sub.depth, sub.url) for sub in result.submodules] == [
        ("libs/other", 1, parse_ssh_url(scenario.other_url).canonical),
        ("libs/other/inner/app", 2, parse_ssh_url(hosted.app.url()).canonical),
    ]
    assert result.submodules[1].key.source == "deploy_key"

    error = _failure(project, "nested", tmp_path / "shallow", max_depth=1)
    assert error.code == "submodule_too_deep"
    assert "libs/other/inner/app" in error.message
    assert MAX_SUBMODULE_DEPTH >= 2


# -- refusals ---------------------------------------------------------------------------------


def test_hidden_and_unknown_commits_are_refused(
    project: Platform, scenario: Scenario, tmp_path: Path
) -> None:
    commit = scenario.commits["with-sub"]
    project.app.commits.hide_commits(PROJECT, [commit])
    for name in (commit, commit[:10], "with-sub"):
        error = _failure(project, name, tmp_path / "hidden")
        assert error.code == "commit_hidden" and commit in error.message
        assert "unhide" in error.hint
    for name in ("0" * 40, "deadbeef", "no-such-branch"):
        error = _failure(project, name, tmp_path / "unknown")
        assert error.code == "commit_not_found"
    assert not (tmp_path / "hidden").exists() and not (tmp_path / "unknown").exists()


def test_submodule_urls_repolink_refuses_are_refused_before_any_fetch(
    project: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    # A key that could fetch "a/first": only the URL check can stop it.
    extra = _additional(project, granted_key(hosted.host, "other", "sup-refused"), "127.0.0.1")
    for name, (_url, reason) in REFUSED_URLS.items():
        dest = tmp_path / name

        error = _failure(project, f"bad-{name}", dest)

        assert (error.code, getattr(error, "reason", None)) == ("submodule_url_refused", reason)
        assert "libs/other" in error.message, name
        assert not dest.exists()
    assert not Path("/tmp/pwned").exists()
    with project.store.session() as session:
        assert get_key_record(session, extra.key_record_id).last_used_at is None, "no fetch ran"


def test_a_gitlink_without_gitmodules_is_refused_and_update_none_is_skipped(
    project: Platform, tmp_path: Path
) -> None:
    error = _failure(project, "no-gitmodules", tmp_path / "a")
    assert error.code == "submodule_config_missing" and "libs/other" in error.message

    result = _checkout(project, "update-none", tmp_path / "b")
    assert result.submodules == ()
    assert list((tmp_path / "b" / "libs" / "other").iterdir()) == []


def test_a_submodule_commit_the_server_does_not_have(
    project: Platform, hosted: HostedRepos, scenario: Scenario, tmp_path: Path
) -> None:
    extra = _additional(project, granted_key(hosted.host, "other", "sup-missing"))
    _rule(project, scenario.other_url, extra.fingerprint_sha256)

    error = _failure(project, "missing-commit", tmp_path / "out")

    assert error.code == "submodule_commit_not_found"
    assert "1" * 40 in error.message and "libs/other" in error.message


def test_a_server_that_serves_only_advertised_commits(
    project: Platform,
    hosted: HostedRepos,
    scenario: Scenario,
    tmp_path: Path,
    recording: RecordingRunner,
) -> None:
    """Protocol v0 makes the host's upload-pack enforce ``allowAnySHA1InWant=false``, as older
    servers do: the pinned commit (no ref points at it) is then fetched with the refs."""
    extra = _additional(project, granted_key(hosted.host, "other", "sup-v0"))
    _rule(project, scenario.other_url, extra.fingerprint_sha256)
    fetches: list[list[str]] = []

    def protocol_v0(run: RecordedRun) -> list[str] | None:
        argv = list(run.argv)
        git_dir = next((arg for arg in argv if arg.startswith("--git-dir=")), "")
        if "fetch" in argv and "repolink-checkout-" in git_dir:
            argv[1:1] = ["-c", "protocol.version=0"]
            fetches.append(argv)
            return argv
        return None

    recording.before_run = protocol_v0

    result = _checkout(project, "with-sub", tmp_path / "out")

    assert result.submodules[0].commit == scenario.other_pinned
    assert (tmp_path / "out" / "libs" / "other" / "file.txt").read_text() == "content 1\n"
    assert len(fetches) == 2 and "+refs/heads/*:refs/heads/*" in fetches[1]


def test_fetched_submodule_objects_are_checked_by_fsck(
    project: Platform, hosted: HostedRepos, scenario: Scenario, tmp_path: Path
) -> None:
    extra = _additional(project, granted_key(hosted.host, "other", "sup-fsck"))
    _rule(project, scenario.other_url, extra.fingerprint_sha256)

    error = _failure(project, "evil", tmp_path / "out")

    assert error.code == "invalid_object"
    assert "hasDotgit" in error.message or "fsck" in error.message
    assert not (tmp_path / "out").exists()


def test_the_destination_must_be_missing_or_empty(project: Platform, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine\n")
    (tmp_path / "file").write_text("a file\n")
    for dest in (tmp_path / "full", tmp_path / "file"):
        error = _failure(project, "main", dest)
        assert error.code == "checkout_dest_not_empty"
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine\n"


def test_no_hook_of_the_mirror_runs(project: Platform, tmp_path: Path) -> None:
    mirror = mirror_path(project.settings, project.app.connections.connection_info(PROJECT).id)
    marker = tmp_path / "hook-ran"
    (mirror / "hooks").mkdir(exist_ok=True)
    for hook in ("post-index-change", "post-checkout", "reference-transaction"):
        path = mirror / "hooks" / hook
        path.write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
        path.chmod(0o755)
    # The hook is real: plain git writing an index from the mirror runs it.
    plain = subprocess.run(
        ["git", f"--git-dir={mirror}", f"--work-tree={tmp_path}", "read-tree", "main"],
        env=_env(tmp_path / "home", GIT_INDEX_FILE=str(tmp_path / "index")),
        capture_output=True,
        check=False,
    )
    assert plain.returncode == 0 and marker.read_text() == "post-index-change\n"
    marker.unlink()

    _checkout(project, "main", tmp_path / "out")

    assert (tmp_path / "out" / "file.txt").exists()
    assert not marker.exists()


def test_relative_urls_resolve_like_git_without_climbing_above_the_root() -> None:
    base = parse_ssh_url("ssh://git@h:2222/team/app.git")
    cases = {
        "../other.git": "ssh://git@h:2222/team/other",
        "./vendor/lib.git": "ssh://git@h:2222/team/app.git/vendor/lib",
        "../../top.git": "ssh://git@h:2222/top",
        ".././x.git": "ssh://git@h:2222/team/x",
        "git@elsewhere:x/y.git": "ssh://git@elsewhere/x/y",
    }
    for text, canonical in cases.items():
        assert resolve_submodule_url(text, base).canonical == canonical
    scp = parse_ssh_url("git@h:team/app.git")
    assert resolve_submodule_url("../other.git", scp).git_url == "ssh://git@h/team/other.git"
    for text in ("../../../x.git", "../../"):
        with pytest.raises(RepolinkError) as caught:
            resolve_submodule_url(text, base)
        assert caught.value.code in ("url_dot_segments", "url_empty_path")


# -- the command ------------------------------------------------------------------------------


def test_checkout_command(
    project: Platform,
    hosted: HostedRepos,
    scenario: Scenario,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = _additional(project, granted_key(hosted.host, "other", "sup-cli"))
    _rule(project, scenario.other_url, extra.fingerprint_sha256)
    for name in [name for name in os.environ if name.startswith("REPOLINK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REPOLINK_DATA_DIR", str(project.settings.resolved_data_dir))

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli_root.main(list(args))
        out, err = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 1), out, err

    code, out, _err = run("checkout", PROJECT, "with-sub", str(tmp_path / "a"), "--json")
    assert code == 0
    document = json.loads(out)
    assert document["commit"] == scenario.commits["with-sub"]
    assert [sub["path"] for sub in document["submodules"]] == ["libs/other"]
    assert (tmp_path / "a" / "libs" / "other" / "file.txt").exists()

    code, out, _err = run("checkout", PROJECT, "with-sub", str(tmp_path / "b"))
    assert code == 0
    assert f"submodule libs/other: {parse_ssh_url(scenario.other_url).canonical}" in out

    code, _out, err = run("checkout", PROJECT, "with-sub", str(tmp_path / "a"))
    assert code == 2 and err.startswith("error: checkout_dest_not_empty: ")
    assert len(err.strip().splitlines()) == 1


# -- against OpenSSH sshd ---------------------------------------------------------------------


@pytest.mark.sshd
@pytest.mark.slow
def test_submodule_through_a_key_rule_against_openssh_sshd(tmp_path: Path) -> None:
    """The same path with OpenSSH sshd as the peer (the built-in host in OpenSSH mode: every
    session is ``repolink host shell`` behind sshd's forced command)."""
    require_sshd()
    login_user = choose_login_user()
    host_settings = Settings(data_dir=new_data_dir(tmp_path, login_user))
    account = generate_key_pair(tmp_path / "keys", "account")
    deploy, extra = generate_key(), generate_key()
    with Store.open(host_settings) as store:
        service = HostService(host_settings, store, runner=HardenedRunner())
        paths = {}
        for slug in ("app", "other"):
            paths[slug] = service.repository_path(service.create_repository(WORKSPACE, slug))
        service.add_account_key(WORKSPACE, account.public_line, label="developer")
        service.add_access_key(WORKSPACE, "app", deploy.public_key.openssh_line(), label="deploy")
        service.add_access_key(WORKSPACE, "other", extra.public_key.openssh_line(), label="extra")
    hand_over(host_settings.data_dir, login_user)
    try:
        with run_sshd(tmp_path / "sshd", host_settings.data_dir, login_user) as sshd:
            client = GitClient(tmp_path / "home", account, sshd.known_hosts, sshd.port, login_user)
            source = tmp_path / "source"
            make_source_repository(source, client.env(), commits=3)
            for slug in ("app", "other"):
                pushed = client.git("push", client.url(f"{WORKSPACE}/{slug}.git"), "main:main",
                                    cwd=source)  # fmt: skip
                assert pushed.returncode == 0, pushed.stderr + sshd.log()
            other_url = client.url(f"{WORKSPACE}/other.git")
            pinned = Builder(paths["other"], tmp_path).git("rev-parse", "main~1")
            Builder(paths["app"], tmp_path).commit(
                "with-sub",
                gitmodules=_gitmodules("libs/other", "../other.git"),
                links={"libs/other": pinned},
            )
            hand_over(host_settings.data_dir, login_user)

            settings = Settings(data_dir=tmp_path / "platform", git_timeout=120)
            fields = sshd.known_hosts.read_text().split()
            host_key = host_key_from_line(" ".join(fields[1:3])).sha256_fingerprint
            with Store.open(settings) as store:
                app = Repolink(settings, store=store)
                with store.session() as session:
                    scanner = keyscan.scanner_for(settings, app.runner)
                    knownhosts.trust(session, "127.0.0.1", sshd.port, host_key, scanner=scanner)
                app.projects.create_project("Sup", slug=PROJECT)
                outcome = app.connections.connect(
                    PROJECT, client.url(f"{WORKSPACE}/app.git"), key=deploy
                )
                assert outcome.error is None, outcome.error.one_line() + sshd.log()
                info = app.additional_keys.add_key(PROJECT, extra)
                app.key_rules.add_rule(PROJECT, other_url, info.fingerprint_sha256)

                result = app.checkouts.checkout_commit(PROJECT, "with-sub", tmp_path / "out")
    finally:
        if login_user != "root":
            shutil.rmtree(host_settings.data_dir, ignore_errors=True)

    assert (tmp_path / "out" / "libs" / "other" / "file.txt").read_text() == "content 1\n"
    [submodule] = result.submodules
    assert submodule.commit == pinned and submodule.key.source == SOURCE_KEY_RULE
    assert submodule.key.fingerprint_sha256 == extra.public_key.sha256_fingerprint
