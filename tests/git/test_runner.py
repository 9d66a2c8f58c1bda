"""HardenedRunner: process groups, time limits, pipes, and the other ways to start a process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.errors import GitError
from repolink.git import runner
from repolink.git.environment import git_argv, hardened_env
from repolink.git.runner import CompletedRun, HardenedRunner

RUNNER = HardenedRunner()
run = RUNNER.run
spawn = RUNNER.spawn
terminate = RUNNER.terminate


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
