"""Host key failures told apart for real: OpenSSH's ssh (and git) against a loopback server."""

from __future__ import annotations

import shlex
from pathlib import Path

from repolink.errors import GitError, RepolinkError
from repolink.git.environment import git_argv, hardened_env, ssh_command
from repolink.git.keyfiles import scrub
from repolink.git.keyscan import scan
from repolink.git.runner import CompletedRun, HardenedRunner
from repolink.hints import command_hint
from repolink.knownhosts import (
    ScannedHostKey,
    diagnose_ssh_stderr,
    host_key_ssh_options,
    known_hosts_text,
    presented_host_keys,
    trust,
    trusted_keys,
)
from repolink.store import Store
from support.knownhosts_support import LoopbackSSHServer, SSHClient, host_key

LOCALHOST = "127.0.0.1"


def real_scan(host: str, port: int) -> list[ScannedHostKey]:
    return scan(host, port, runner=HardenedRunner(), connect_timeout=5)


def fetch_like_attempt(
    store: Store, client: SSHClient, port: int
) -> tuple[CompletedRun, RepolinkError | None]:
    """What a fetch does: known_hosts for this host only, strict ssh, diagnosis on failure."""
    with store.session() as session:
        text = known_hosts_text(session, [(LOCALHOST, port)])
        trusted = trusted_keys(session, LOCALHOST, port)
    run = client.connect(port, text)
    return run, diagnose_ssh_stderr(run.stderr, host=LOCALHOST, port=port, trusted=trusted)


def test_unknown_host_fails_with_host_key_unknown_naming_the_presented_fingerprint(
    store: Store, ssh_server: LoopbackSSHServer, ssh_client: SSHClient
) -> None:
    run, error = fetch_like_attempt(store, ssh_client, ssh_server.port)

    assert run.returncode == 255
    assert isinstance(error, GitError)
    assert error.code == "host_key_unknown"
    presented = ssh_server.fingerprints()[0]
    assert presented in error.message
    assert "repolink " not in error.hint  # adapter-neutral; the CLI names the command:
    assert f"repolink hostkeys trust 127.0.0.1:{ssh_server.port} --fingerprint {presented}" in (
        command_hint(error)
    )
    # The reporter told ssh nothing: the run's known_hosts file is still empty.
    assert ssh_client.known_hosts.read_text() == ""
    assert [key.fingerprint for key in presented_host_keys(run.stderr)] == [presented]


def test_trusted_host_gets_past_the_host_key_to_authentication(
    store: Store, ssh_server: LoopbackSSHServer, ssh_client: SSHClient
) -> None:
    with store.session() as session:
        trust(session, LOCALHOST, ssh_server.port, ssh_server.fingerprints()[0], scanner=real_scan)

    run, error = fetch_like_attempt(store, ssh_client, ssh_server.port)

    assert error is None
    assert "Permission denied (publickey)" in run.stderr  # the server refuses everyone
    assert "Host key verification failed" not in run.stderr


def test_a_replaced_host_key_fails_with_host_key_changed_naming_both(
    store: Store, ssh_server: LoopbackSSHServer, ssh_client: SSHClient
) -> None:
    old = ssh_server.fingerprints()[0]
    with store.session() as session:
        trust(session, LOCALHOST, ssh_server.port, old, scanner=real_scan)
    ssh_server.restart([host_key("ssh-ed25519")])
    new = ssh_server.fingerprints()[0]

    run, error = fetch_like_attempt(store, ssh_client, ssh_server.port)

    assert run.returncode == 255
    assert isinstance(error, GitError)
    assert error.code == "host_key_changed"
    assert old in error.message and new in error.message
    assert "repolink " not in error.hint  # adapter-neutral; the CLI names the commands:
    assert f"repolink hostkeys remove 127.0.0.1:{ssh_server.port}" in command_hint(error)
    assert f"--fingerprint {new}" in command_hint(error)


def test_a_host_key_of_another_type_is_a_change_too(
    store: Store, ssh_server: LoopbackSSHServer, ssh_client: SSHClient
) -> None:
    old = ssh_server.fingerprints()[0]
    with store.session() as session:
        trust(session, LOCALHOST, ssh_server.port, old, scanner=real_scan)
    ssh_server.restart([host_key("ecdsa-sha2-nistp256")])

    _, error = fetch_like_attempt(store, ssh_client, ssh_server.port)

    assert isinstance(error, GitError)
    assert error.code == "host_key_changed"
    assert old in error.message
    assert f"ecdsa-sha2-nistp256 {ssh_server.fingerprints()[0]}" in error.message


def test_without_the_reporter_ssh_own_warning_still_names_a_changed_key(
    store: Store, ssh_server: LoopbackSSHServer, ssh_client: SSHClient
) -> None:
    old = ssh_server.fingerprints()[0]
    with store.session() as session:
        trust(session, LOCALHOST, ssh_server.port, old, scanner=real_scan)
        text = known_hosts_text(session, [(LOCALHOST, ssh_server.port)])
        trusted = trusted_keys(session, LOCALHOST, ssh_server.port)
    ssh_server.restart([host_key("ssh-ed25519")])
    ssh_client.known_hosts.write_text(text)
    argv = ssh_command(
        key_path=ssh_client.key_path,
        known_hosts_path=ssh_client.known_hosts,
        connect_timeout=10,
        port=ssh_server.port,
    )
    run = HardenedRunner().run(
        [*argv, "--", "git@127.0.0.1", "true"],
        env=hardened_env(ssh_client.directory / "home"),
        timeout=60,
    )

    error = diagnose_ssh_stderr(run.stderr, host=LOCALHOST, port=ssh_server.port, trusted=trusted)

    assert isinstance(error, GitError) and error.code == "host_key_changed"
    assert ssh_server.fingerprints()[0] in error.message


def test_git_through_git_ssh_command_reports_the_key_and_is_diagnosed_after_scrub(
    store: Store, ssh_server: LoopbackSSHServer, ssh_client: SSHClient, run_dir: Path
) -> None:
    """The options survive shlex.join + git's ``sh -c``, and scrubbed stderr still works."""
    argv = ssh_command(
        key_path=ssh_client.key_path,
        known_hosts_path=ssh_client.known_hosts,
        connect_timeout=10,
    )
    ssh_client.known_hosts.write_text("")
    env = hardened_env(
        run_dir / "home", extra={"GIT_SSH_COMMAND": shlex.join([*argv, *host_key_ssh_options()])}
    )
    url = f"ssh://git@127.0.0.1:{ssh_server.port}/team/repo.git"
    run = HardenedRunner().run(git_argv("ls-remote", "--", url), env=env, timeout=60)

    assert run.returncode != 0
    scrubbed = scrub(run.stderr, secrets_paths=[run_dir])
    error = diagnose_ssh_stderr(scrubbed, host=LOCALHOST, port=ssh_server.port, trusted=[])
    assert isinstance(error, GitError) and error.code == "host_key_unknown"
    assert ssh_server.fingerprints()[0] in error.message


def test_other_failures_are_not_host_key_failures() -> None:
    stderr = "git@127.0.0.1: Permission denied (publickey).\nfatal: Could not read from remote"
    assert diagnose_ssh_stderr(stderr, host=LOCALHOST, port=22, trusted=[]) is None
