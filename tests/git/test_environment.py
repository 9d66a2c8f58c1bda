"""The environment and argv of every git and ssh process (architecture.md#security)."""

from __future__ import annotations

import itertools
import os
import shlex
import stat
import subprocess
from pathlib import Path
from typing import TypedDict

import pytest

from repolink.git import environment
from repolink.git.environment import git_argv, git_ssh_command, hardened_env, ssh_command
from repolink.git.runner import HardenedRunner

RUNNER = HardenedRunner()
run = RUNNER.run


# -- hardened_env -----------------------------------------------------------------------------


POISON = {
    "SSH_AUTH_SOCK": "/tmp/agent.sock",
    "SSH_AGENT_PID": "4242",
    "SSH_ASKPASS": "/usr/bin/ssh-askpass",
    "GIT_SSH_COMMAND": "ssh -o ProxyCommand=evil",
    "GIT_SSH": "/tmp/evil-ssh",
    "GIT_DIR": "/tmp/evil.git",
    "GIT_WORK_TREE": "/tmp/evil",
    "GIT_CONFIG_PARAMETERS": "'core.hookspath=/tmp/evil'",
    "GIT_EXEC_PATH": "/tmp/evil-exec",
    "GIT_ALLOW_PROTOCOL": "ext:file:ssh",
    "LD_PRELOAD": "/tmp/evil.so",
    "XDG_CONFIG_HOME": "/tmp/evil-xdg",
}


def test_hardened_env_drops_the_callers_agent_ssh_and_git_variables(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    for name, value in POISON.items():
        monkeypatch.setenv(name, value)
    env = hardened_env(home)
    for name in POISON:
        assert env.get(name) != POISON[name], name
    assert "SSH_AUTH_SOCK" not in env
    assert "GIT_SSH_COMMAND" not in env
    assert "GIT_SSH" not in env
    assert "GIT_DIR" not in env
    assert not any(name.startswith("LD_") for name in env)


def test_hardened_env_has_the_section5_settings(home: Path) -> None:
    env = hardened_env(home)
    assert env["HOME"] == str(home)
    assert env["GIT_ALLOW_PROTOCOL"] == "ssh"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["LANG"] == env["LC_ALL"] == "C"
    assert env["SSH_ASKPASS_REQUIRE"] == "never"
    askpass = env.get("GIT_ASKPASS")
    assert askpass is None or (os.path.isabs(askpass) and askpass.endswith("false"))


def test_hardened_env_keeps_only_absolute_path_entries(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv("PATH", f"relative/bin::.:/usr/bin:/bin:/usr/bin{os.pathsep}")
    assert hardened_env(home)["PATH"] == "/usr/bin:/bin"
    monkeypatch.setenv("PATH", "")
    assert hardened_env(home)["PATH"] == environment.SAFE_DEFAULT_PATH


@pytest.mark.parametrize(
    "name",
    ["HOME", "GIT_ALLOW_PROTOCOL", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_COUNT", "SSH_AUTH_SOCK",
     "GIT_SSH", "LD_PRELOAD", "GIT_TERMINAL_PROMPT"],
)  # fmt: skip
def test_extra_cannot_undo_the_hardening(home: Path, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        hardened_env(home, extra={name: "x"})


def test_extra_adds_variables(home: Path) -> None:
    extra = {"GIT_SSH_COMMAND": "ssh -F /dev/null", "GIT_PROTOCOL": "version=2"}
    env = hardened_env(home, extra=extra)
    assert env["GIT_SSH_COMMAND"] == "ssh -F /dev/null"
    assert env["GIT_PROTOCOL"] == "version=2"


def test_hardened_env_needs_an_absolute_home() -> None:
    with pytest.raises(ValueError):
        hardened_env(Path("relative/home"))


def test_the_child_sees_exactly_the_hardened_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in POISON.items():
        monkeypatch.setenv(name, value)
    result = run(["env", "-0"], env=env, timeout=10)
    seen = dict(item.split("=", 1) for item in result.stdout.decode().split("\0") if item)
    assert seen == env


def _poison_git_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, home: Path) -> None:
    poison = "[alias]\n\tpoisoned = !touch /tmp/poisoned\n[core]\n\thooksPath = /tmp/evil\n"
    caller_home = tmp_path / "caller-home"
    (caller_home / ".config" / "git").mkdir(parents=True)
    (caller_home / ".gitconfig").write_text(poison)
    (caller_home / ".config" / "git" / "config").write_text(poison)
    (tmp_path / "global.gitconfig").write_text(poison)
    (tmp_path / "system.gitconfig").write_text(poison)
    (home / ".gitconfig").write_text(poison)  # even our own isolated HOME is not read
    monkeypatch.setenv("HOME", str(caller_home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(caller_home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global.gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(tmp_path / "system.gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'poisoned.parameter=1'")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "poisoned.count")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "1")


def test_git_sees_no_config_but_ours(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, home: Path
) -> None:
    _poison_git_config(monkeypatch, tmp_path, home)
    argv = git_argv("config", "--list", "--show-origin")

    unprotected = subprocess.run(argv, cwd=tmp_path, capture_output=True, check=False)
    assert b"poisoned" in unprotected.stdout  # the poison works on an ordinary run

    result = run(argv, env=hardened_env(home), cwd=tmp_path, timeout=10)
    assert result.returncode == 0, result.stderr
    listing = result.stdout.decode()
    assert "poison" not in listing
    assert "/tmp/evil" not in listing
    lines = listing.splitlines()
    assert lines and all(line.startswith("command line:") for line in lines)
    assert "command line:\tcore.hookspath=/dev/null" in lines


def test_hooks_never_run(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    marker = tmp_path / "hook-ran"
    assert run(git_argv("init", "-q", str(repo)), env=env, timeout=10).ok
    hooks = repo / "custom-hooks"
    hooks.mkdir()
    for directory in (repo / ".git" / "hooks", hooks):
        directory.mkdir(exist_ok=True)
        for name in ("pre-commit", "post-commit"):
            hook = directory / name
            hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
            hook.chmod(stat.S_IRWXU)
    run(
        git_argv("config", "core.hooksPath", str(hooks), git_dir=repo / ".git"), env=env, timeout=10
    )
    identity = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    commit = ["commit", "-q", "--allow-empty", "-m", "x"]

    plain = subprocess.run(["git", *commit], cwd=repo, env={**env, **identity}, check=False)
    assert plain.returncode == 0 and marker.exists()  # the hooks work without our -c settings
    marker.unlink()

    hardened = run(git_argv(*commit), env=hardened_env(home, extra=identity), cwd=repo, timeout=10)
    assert hardened.ok, hardened.stderr
    assert not marker.exists()


def test_only_the_ssh_transport_is_allowed(tmp_path: Path, env: dict[str, str]) -> None:
    bare = tmp_path / "bare.git"
    marker = tmp_path / "ext-ran"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    assert subprocess.run(["git", "ls-remote", f"file://{bare}"], check=False).returncode == 0

    for url in (f"file://{bare}", str(bare), f"ext::touch {marker}"):
        result = run(git_argv("ls-remote", "--", url), env=env, cwd=tmp_path, timeout=10)
        assert result.returncode != 0, url
        assert "not allowed" in result.stderr, result.stderr
    assert not marker.exists()


# -- ssh_command ------------------------------------------------------------------------------


def _options(argv: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for flag, value in itertools.pairwise(argv):
        if flag == "-o":
            name, _, setting = value.partition("=")
            options[name] = setting
    return options


class SSHPaths(TypedDict):
    key_path: Path
    known_hosts_path: Path


@pytest.fixture
def ssh_paths(tmp_path: Path) -> SSHPaths:
    key = tmp_path / "id"
    key.write_text("placeholder")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    return SSHPaths(key_path=key, known_hosts_path=known_hosts)


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(
            {
                "IdentitiesOnly": "yes",
                "IdentityAgent": "none",
                "BatchMode": "yes",
                "PreferredAuthentications": "publickey",
                "PasswordAuthentication": "no",
                "KbdInteractiveAuthentication": "no",
            },
            id="only-our-key-no-prompts",
        ),
        pytest.param(
            {
                "StrictHostKeyChecking": "yes",
                "GlobalKnownHostsFile": "/dev/null",
                "UpdateHostKeys": "no",
            },
            id="host-keys",
        ),
        pytest.param(
            {
                "ConnectTimeout": "7",
                "ServerAliveInterval": str(environment.SERVER_ALIVE_INTERVAL),
                "ServerAliveCountMax": str(environment.SERVER_ALIVE_COUNT_MAX),
            },
            id="timeouts",
        ),
        pytest.param(
            {
                "ForwardAgent": "no",
                "ForwardX11": "no",
                "ClearAllForwardings": "yes",
                "PermitLocalCommand": "no",
                "ProxyCommand": "none",
            },
            id="no-forwarding-no-local-commands",
        ),
        pytest.param({"ControlMaster": "no", "ControlPath": "none"}, id="no-sharing-by-default"),
    ],
)
def test_ssh_command_option_families(ssh_paths: SSHPaths, expected: dict[str, str]) -> None:
    argv = ssh_command(**ssh_paths, connect_timeout=7)
    options = _options(argv)
    for name, value in expected.items():
        assert options[name] == value, name


def test_ssh_command_reads_no_config_and_uses_our_files(ssh_paths: SSHPaths) -> None:
    argv = ssh_command(**ssh_paths, connect_timeout=7)
    assert argv[:3] == ["ssh", "-F", "/dev/null"]
    assert argv[-2:] == ["-i", str(ssh_paths["key_path"])]
    assert _options(argv)["UserKnownHostsFile"] == str(ssh_paths["known_hosts_path"])


def test_ssh_command_shares_connections_when_asked(tmp_path: Path, ssh_paths: SSHPaths) -> None:
    control = tmp_path / "cm"
    argv = ssh_command(**ssh_paths, connect_timeout=7, control_path=control, port=2222)
    options = _options(argv)
    assert options["ControlMaster"] == "auto"
    assert options["ControlPath"] == str(control)
    assert options["ControlPersist"] == str(environment.CONTROL_PERSIST)
    assert argv[argv.index("-p") + 1] == "2222"
    longer = ssh_command(**ssh_paths, connect_timeout=7, control_path=control, control_persist=900)
    assert _options(longer)["ControlPersist"] == "900"


def _ssh_g(argv: list[str], env: dict[str, str]) -> dict[str, list[str]]:
    result = run([argv[0], "-G", *argv[1:], "example.invalid"], env=env, timeout=10)
    assert result.returncode == 0, result.stderr
    effective: dict[str, list[str]] = {}
    for line in result.stdout.decode().splitlines():
        name, _, value = line.partition(" ")
        effective.setdefault(name, []).append(value)
    return effective


def test_real_ssh_reads_the_options_as_intended(
    tmp_path: Path, ssh_paths: SSHPaths, env: dict[str, str]
) -> None:
    control = tmp_path / "cm"
    argv = ssh_command(**ssh_paths, connect_timeout=7, control_path=control)
    effective = _ssh_g(argv, env)
    assert effective["identitiesonly"] == ["yes"]
    assert effective["identityagent"] == ["none"]
    assert effective["identityfile"] == [str(ssh_paths["key_path"])]
    assert effective["batchmode"] == ["yes"]
    assert effective["stricthostkeychecking"] == ["true"]
    assert effective["globalknownhostsfile"] == ["/dev/null"]
    assert effective["userknownhostsfile"] == [str(ssh_paths["known_hosts_path"])]
    assert effective["passwordauthentication"] == ["no"]
    assert effective["kbdinteractiveauthentication"] == ["no"]
    assert effective["preferredauthentications"] == ["publickey"]
    assert effective["forwardagent"] == ["no"]
    assert effective["clearallforwardings"] == ["yes"]
    assert effective["updatehostkeys"] == ["false"]
    assert effective["connecttimeout"] == ["7"]
    assert effective["controlmaster"] == ["auto"]
    assert effective["controlpath"] == [str(control)]
    assert "proxycommand" not in effective


def test_git_ssh_command_is_the_same_argv_quoted(tmp_path: Path, ssh_paths: SSHPaths) -> None:
    control = tmp_path / "cm"
    command = git_ssh_command(**ssh_paths, connect_timeout=9, control_path=control)
    assert shlex.split(command) == ssh_command(**ssh_paths, connect_timeout=9, control_path=control)


def test_a_pinned_address_is_where_real_ssh_connects_verifying_the_alias(
    ssh_paths: SSHPaths, env: dict[str, str]
) -> None:
    argv = ssh_command(
        **ssh_paths,
        connect_timeout=7,
        pinned_address="127.0.0.1",
        host_key_alias="[git.example]:2222",
    )
    effective = _ssh_g(argv, env)
    assert effective["hostname"] == ["127.0.0.1"]
    assert effective["hostkeyalias"] == ["[git.example]:2222"]
    unpinned = _ssh_g(ssh_command(**ssh_paths, connect_timeout=7), env)
    assert unpinned["hostname"] == ["example.invalid"] and "hostkeyalias" not in unpinned


@pytest.mark.parametrize(
    ("address", "alias"),
    [
        ("git.example", "git.example"),  # a name would be resolved again
        ("127.0.0.1", None),  # the key would be looked up under the address
        ("127.0.0.1", "git.example -oProxyCommand=x"),
        ("10.0.0.1%eth0 x", "git.example"),
    ],
)
def test_a_pinned_address_is_an_ip_with_a_plain_alias(
    ssh_paths: SSHPaths, address: str, alias: str | None
) -> None:
    with pytest.raises(ValueError):
        ssh_command(**ssh_paths, connect_timeout=7, pinned_address=address, host_key_alias=alias)


@pytest.mark.parametrize(
    "bad", ["relative/id", "/tmp/with space/id", "/tmp/quo'te/id", '/tmp/dq"/id', "/tmp/%h/id",
            "/tmp/new\nline", "/tmp/$HOME/id", "~/.ssh/id"],
)  # fmt: skip
def test_ssh_command_refuses_unsafe_paths(ssh_paths: SSHPaths, bad: str) -> None:
    key, known_hosts = ssh_paths["key_path"], ssh_paths["known_hosts_path"]
    with pytest.raises(ValueError, match="key_path"):
        ssh_command(key_path=Path(bad), known_hosts_path=known_hosts, connect_timeout=5)
    with pytest.raises(ValueError, match="known_hosts_path"):
        ssh_command(key_path=key, known_hosts_path=Path(bad), connect_timeout=5)
    with pytest.raises(ValueError, match="control_path"):
        ssh_command(**ssh_paths, connect_timeout=5, control_path=Path(bad))


def test_ssh_command_refuses_a_control_path_ssh_cannot_bind(ssh_paths: SSHPaths) -> None:
    with pytest.raises(ValueError, match="control_path"):
        ssh_command(**ssh_paths, connect_timeout=5, control_path=Path("/tmp/" + "c" * 100))


def test_ssh_command_needs_a_positive_timeout(ssh_paths: SSHPaths) -> None:
    with pytest.raises(ValueError):
        ssh_command(**ssh_paths, connect_timeout=0)


def test_git_argv_puts_the_hardening_before_the_subcommand(tmp_path: Path) -> None:
    argv = git_argv("fetch", "--prune", "--", "ssh://git@host/repo.git", git_dir=tmp_path)
    assert argv[0] == "git"
    settings = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    for required in (
        "core.hooksPath=/dev/null",
        "protocol.allow=never",
        "protocol.ssh.allow=always",
        "core.fsmonitor=false",
        "credential.helper=",
    ):
        assert required in settings
    assert argv.index(f"--git-dir={tmp_path}") < argv.index("fetch")
    assert max(i for i, arg in enumerate(argv) if arg == "-c") < argv.index("fetch")
    assert argv[-4:] == ["fetch", "--prune", "--", "ssh://git@host/repo.git"][-4:]
