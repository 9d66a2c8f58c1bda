from __future__ import annotations

import asyncio
import itertools
import os
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import pytest

from repolink.errors import GitError
from repolink.git import environment, keyfiles, runner
from repolink.git.environment import git_argv, git_ssh_command, hardened_env, ssh_command
from repolink.git.keyfiles import private_key_file, scrub
from repolink.git.runner import CompletedRun, HardenedRunner

RUNNER = HardenedRunner()
run = RUNNER.run
spawn = RUNNER.spawn
terminate = RUNNER.terminate


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return hardened_env(home)


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_until_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if not _gone(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


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


# -- run --------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_timeout_stops_the_whole_process_group(tmp_path: Path, env: dict[str, str]) -> None:
    got_term = tmp_path / "got-term"
    script = f"""
        (trap '' TERM; exec sleep 100) & echo $!
        (trap 'echo term > {got_term}; exit 0' TERM; while :; do sleep 0.05; done) & echo $!
        sleep 100 & echo $!
        echo $$
        wait
    """
    result = run(["sh", "-c", script], env=env, timeout=1, kill_grace=0.5)
    assert result.timed_out
    assert result.returncode < 0
    pids = [int(line) for line in result.stdout.split()]
    assert len(pids) == 4
    assert _wait_until_gone(pids) == []  # including the one that ignored SIGTERM
    assert got_term.read_text().strip() == "term"  # SIGTERM came first


@pytest.mark.timeout(30)
def test_processes_left_behind_by_a_finished_child_are_stopped(env: dict[str, str]) -> None:
    result = run(["sh", "-c", "sleep 100 & echo $!"], env=env, timeout=20, kill_grace=0.5)
    assert not result.timed_out
    assert result.returncode == 0
    assert _wait_until_gone([int(result.stdout)]) == []


def test_the_child_runs_in_its_own_session(env: dict[str, str]) -> None:
    result = run(["sh", "-c", "cut -d' ' -f6 /proc/$$/stat; echo $$"], env=env, timeout=10)
    session, pid = result.stdout.split()
    assert session == pid
    assert int(session) != os.getsid(0)


@pytest.fixture
def stdin_that_would_block() -> Iterator[None]:
    """Make our own fd 0 a pipe nobody writes to: a child inheriting it would wait forever."""
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)


@pytest.mark.timeout(30)
@pytest.mark.usefixtures("stdin_that_would_block")
def test_stdin_is_closed(env: dict[str, str]) -> None:
    result = run(["sh", "-c", "cat; readlink /proc/self/fd/0"], env=env, timeout=5)
    assert not result.timed_out
    assert result.returncode == 0
    assert result.stdout == b"/dev/null\n"


def test_input_is_fed_to_stdin(env: dict[str, str]) -> None:
    result = run(["cat"], env=env, timeout=10, input=b"hello\x00world" * 10000)
    assert result.stdout == b"hello\x00world" * 10000


def test_file_descriptors_are_not_inherited(env: dict[str, str]) -> None:
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        script = f"[ -e /proc/$$/fd/{write_end} ] && echo inherited || echo closed"
        result = run(["sh", "-c", script], env=env, timeout=10)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert write_end > 2
    assert result.stdout == b"closed\n"


@pytest.mark.timeout(30)
def test_large_stdout_and_stderr_do_not_deadlock(env: dict[str, str]) -> None:
    script = "head -c 3000000 /dev/zero >&2; head -c 3000000 /dev/zero; echo x >&2"
    result = run(["sh", "-c", script], env=env, timeout=20)
    assert not result.timed_out
    assert len(result.stdout) == 3_000_000
    assert result.stderr.endswith("x\n")
    assert len(result.stderr.encode()) <= runner.STDERR_LIMIT_BYTES


def test_stderr_lines_are_streamed_split_at_cr_and_lf(env: dict[str, str]) -> None:
    lines: list[str] = []
    script = r"printf 'Receiving 10%%\rReceiving 100%%\ndone\nno newline' >&2"
    result = run(["sh", "-c", script], env=env, timeout=10, on_stderr_line=lines.append)
    assert lines == ["Receiving 10%", "Receiving 100%", "done", "no newline"]
    assert result.stderr == "Receiving 10%\rReceiving 100%\ndone\nno newline"


def test_stdout_can_be_streamed(env: dict[str, str]) -> None:
    chunks: list[bytes] = []
    result = run(["sh", "-c", "seq 1 20000"], env=env, timeout=10, on_stdout=chunks.append)
    assert result.stdout == b""
    assert b"".join(chunks).split() == [str(n).encode() for n in range(1, 20001)]


@pytest.mark.timeout(30)
def test_a_failing_callback_stops_the_child_and_is_raised(env: dict[str, str]) -> None:
    def explode(line: str) -> None:
        raise RuntimeError(f"callback failed on {line}")

    with pytest.raises(RuntimeError, match="callback failed on started"):
        run(
            ["sh", "-c", "echo started >&2; exec sleep 100"],
            env=env,
            timeout=60,
            on_stderr_line=explode,
            kill_grace=0.5,
        )


def test_missing_programs_raise_git_error(tmp_path: Path, home: Path) -> None:
    env = hardened_env(home)
    env["PATH"] = str(tmp_path)  # nothing in it
    with pytest.raises(GitError) as caught:
        run(git_argv("--version"), env=env, timeout=10)
    assert caught.value.code == "git_not_found"
    with pytest.raises(GitError) as caught:
        run(["ssh", "-V"], env=env, timeout=10)
    assert caught.value.code == "ssh_not_found"


def test_a_missing_working_directory_is_a_programming_error(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="working directory"):
        run(["true"], env=env, cwd=tmp_path / "missing", timeout=10)


def test_check_turns_failures_into_git_errors(tmp_path: Path) -> None:
    ok = CompletedRun(returncode=0, stdout=b"", stderr="", timed_out=False, duration=0.1)
    assert ok.check("git fetch") is ok
    secret_dir = tmp_path / "repolink-key-abc"
    failed = CompletedRun(
        returncode=128,
        stdout=b"",
        stderr=f'Warning: something\nLoad key "{secret_dir}/id": invalid format\n',
        timed_out=False,
        duration=0.1,
    )
    with pytest.raises(GitError) as caught:
        failed.check("git fetch", secrets_paths=[secret_dir])
    assert caught.value.code == "git_failed"
    assert str(secret_dir) not in caught.value.message
    assert 'Load key "<tmp>/id": invalid format' in caught.value.message
    stopped = CompletedRun(returncode=-9, stdout=b"", stderr="", timed_out=True, duration=2)
    with pytest.raises(GitError) as caught:
        stopped.check("git fetch")
    assert caught.value.code == "timeout"


# -- spawn / terminate ------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_spawned_processes_talk_over_pipes_in_their_own_session(env: dict[str, str]) -> None:
    async def scenario() -> tuple[bytes, int, int]:
        process = await spawn(["sh", "-c", "cat; cut -d' ' -f6 /proc/$$/stat"], env=env)
        out, _ = await process.communicate(b"ping\n")
        return out, process.pid, await process.wait()

    out, pid, status = asyncio.run(scenario())
    assert status == 0
    assert out.split() == [b"ping", str(pid).encode()]


@pytest.mark.timeout(30)
def test_terminate_stops_the_group_of_a_spawned_process(env: dict[str, str]) -> None:
    async def scenario() -> tuple[int, list[int]]:
        script = "(trap '' TERM; exec sleep 100) & echo $!; echo $$; wait"
        process = await spawn(["sh", "-c", script], env=env)
        assert process.stdout is not None
        pids = [int(await process.stdout.readline()) for _ in range(2)]
        status = await terminate(process, grace=0.5)
        await process.communicate()  # drain to EOF so the transport closes with the loop
        return status, pids

    status, pids = asyncio.run(scenario())
    assert status < 0
    assert _wait_until_gone(pids) == []


def test_spawn_reports_a_missing_program(tmp_path: Path, home: Path) -> None:
    env = hardened_env(home)
    env["PATH"] = str(tmp_path)
    with pytest.raises(GitError) as caught:
        asyncio.run(spawn(["git", "upload-pack", "."], env=env))
    assert caught.value.code == "git_not_found"


# -- run_attached / replace_process / start_detached ------------------------------------------


def test_an_attached_run_writes_to_our_own_streams_with_only_its_environment(
    env: dict[str, str], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPOLINK_LEAK", "caller's")
    script = 'echo "out ${REPOLINK_LEAK:-none}"; echo err >&2; exit 3'
    status = RUNNER.run_attached(["sh", "-c", script], env=env)
    captured = capfd.readouterr()
    assert status == 3
    assert captured.out == "out none\n"  # nothing captured in between, nothing inherited
    assert captured.err == "err\n"


def test_replace_process_execs_the_program_with_only_its_environment(
    tmp_path: Path, env: dict[str, str]
) -> None:
    code = (
        "import sys; from repolink.git.runner import HardenedRunner; "
        "print('buffered before exec', end=' '); "
        "HardenedRunner().replace_process(['sh', '-c', 'echo $$ ${REPOLINK_LEAK:-none}'], "
        f"env={env!r})"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "REPOLINK_LEAK": "caller's"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    words = out.split()
    assert words[:3] == ["buffered", "before", "exec"]  # flushed before exec discarded it
    # The shell has the pid of the Python process: it replaced it, and inherited nothing.
    assert words[3:] == [str(child.pid), "none"]


def test_a_detached_process_runs_in_a_session_of_its_own_without_our_streams(
    tmp_path: Path, env: dict[str, str]
) -> None:
    report = tmp_path / "report"
    script = (
        "streams=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2); "
        "session=$(cut -d' ' -f6 /proc/$$/stat); "
        "echo $session $$ $streams > report.tmp; mv report.tmp report"
    )
    assert RUNNER.start_detached(["sh", "-c", script], env=env, cwd=tmp_path)
    deadline = time.monotonic() + 20
    while not report.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    session, pid, *streams = report.read_text().split()
    assert session == pid
    assert streams == ["/dev/null"] * 3


def test_a_detached_process_that_cannot_start_is_reported_not_raised(
    tmp_path: Path, env: dict[str, str]
) -> None:
    assert not RUNNER.start_detached([str(tmp_path / "missing")], env=env, cwd=tmp_path)


# -- private_key_file -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openssh_key(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("keys") / "id"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
    )
    return path.read_bytes()


def test_private_key_file_is_0600_in_a_0700_directory(openssh_key: bytes) -> None:
    with private_key_file(openssh_key) as key_path:
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
        assert key_path.read_bytes() == openssh_key
        assert os.listdir(key_path.parent) == [key_path.name]
    assert not key_path.exists()
    assert not key_path.parent.exists()


def test_private_key_file_is_usable_by_ssh_keygen(openssh_key: bytes, env: dict[str, str]) -> None:
    with private_key_file(openssh_key.rstrip(b"\n")) as key_path:
        assert key_path.read_bytes() == openssh_key  # a trailing newline OpenSSH insists on
        result = run(["ssh-keygen", "-y", "-f", str(key_path)], env=env, timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"ssh-ed25519 ")


def test_private_key_file_is_removed_after_an_exception(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), private_key_file(b"secret", base_dir=tmp_path) as key_path:
        (key_path.parent / "known_hosts").write_text("host ssh-ed25519 AAAA\n")
        raise RuntimeError("fetch failed")
    assert key_path.parent.parent == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_private_key_file_is_wiped_before_removal(tmp_path: Path) -> None:
    with private_key_file(b"secret material", base_dir=tmp_path) as key_path:
        keep = tmp_path / "hardlink"
        os.link(key_path, keep)  # sees the same inode after the key file is unlinked
    assert keep.read_bytes() == bytes(len(b"secret material\n"))


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
    assert options["ControlPersist"] == environment.CONTROL_PERSIST
    assert argv[argv.index("-p") + 1] == "2222"


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


# -- scrub ------------------------------------------------------------------------------------


def test_scrub_replaces_temp_paths(tmp_path: Path) -> None:
    secret_dir = tmp_path / "repolink-key-x1"
    text = (
        f'Load key "{secret_dir}/id": invalid format\n'
        f"ControlPath {secret_dir}/cm too long\n"
        "fatal: Could not read from remote repository.\n"
    )
    cleaned = scrub(text, secrets_paths=[secret_dir])
    assert str(secret_dir) not in cleaned
    assert str(tmp_path) in text and cleaned.count("<tmp>") == 2
    assert cleaned.endswith("fatal: Could not read from remote repository.\n")


def test_scrub_removes_lines_that_look_like_key_material() -> None:
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
    text = (
        "remote: Counting objects: 3\n"
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        f"{body}\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
        "PuTTY-User-Key-File-3: ssh-ed25519\n"
        f"error: weird {body}Zz\n"
        "From ssh://host/repo\n"
        " * [new branch]      main       -> origin/main\n"
        f"fatal: bad object {'ab12' * 16}\n"
    )
    cleaned = scrub(text, secrets_paths=[])
    assert "PRIVATE KEY" not in cleaned
    assert body not in cleaned
    assert "PuTTY" not in cleaned
    assert cleaned.splitlines() == [
        "remote: Counting objects: 3",
        "From ssh://host/repo",
        " * [new branch]      main       -> origin/main",
        f"fatal: bad object {'ab12' * 16}",  # a sha256 object id is not key material
    ]


def test_key_directory_of_a_dead_process_is_wiped_by_the_next_run(tmp_path: Path) -> None:
    # A run killed with SIGKILL cannot clean up; the next run removes what it left.
    child = subprocess.Popen(["true"])
    child.wait()
    stale = tmp_path / f"{keyfiles.KEY_DIR_PREFIX}{child.pid}-abc123"
    stale.mkdir(mode=0o700)
    (stale / "id").write_bytes(b"not really a key\n")
    alive = tmp_path / f"{keyfiles.KEY_DIR_PREFIX}{os.getpid()}-def456"
    alive.mkdir(mode=0o700)

    with keyfiles.private_key_file(b"key\n", base_dir=tmp_path) as key_path:
        assert key_path.parent.name.startswith(f"{keyfiles.KEY_DIR_PREFIX}{os.getpid()}-")
        assert not stale.exists()
        assert alive.exists()  # a live process's directory is never touched
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]
