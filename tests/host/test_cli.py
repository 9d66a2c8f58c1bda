"""``repolink host …``: the admin commands in process, ``serve`` as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from repolink.cli.host import app
from repolink.settings import Settings
from repolink.ssh.server_keys import ensure_host_keys
from support.clikit import run_in_fresh_data_dir
from support.hostkit import GitClient, KeyPair
from support.platformkit import HostedRepos, Platform
from support.postgres import database_env
from support.servekit import serving

pytestmark = pytest.mark.databases

MakeKey = Callable[[str], KeyPair]


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., str]:
    runner = CliRunner()
    env = {"REPOLINK_DATA_DIR": str(tmp_path / "data")}

    def invoke(*args: str, input: str | None = None) -> str:
        result = runner.invoke(app, list(args), env=env, input=input, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    return invoke


_repolink = run_in_fresh_data_dir


def test_repositories(cli: Callable[..., str], tmp_path: Path) -> None:
    assert "created team/app" in cli("repo", "create", "team/app")
    cli("repo", "create", "team/lib.git")
    listed = json.loads(cli("repo", "list", "team", "--json"))
    assert [(r["full_name"], r["ssh_clone_path"]) for r in listed] == [
        ("team/app", "team/app.git"),
        ("team/lib", "team/lib.git"),
    ]
    assert "team/lib" in cli("repo", "list", "team")
    assert "deleted team/lib" in cli("repo", "delete", "team/lib", "--yes")
    assert [r["slug"] for r in json.loads(cli("repo", "list", "team", "--json"))] == ["app"]


def test_access_keys(cli: Callable[..., str], make_key: MakeKey) -> None:
    cli("repo", "create", "team/app")
    reader, writer = make_key("reader"), make_key("writer")
    added = json.loads(
        cli(
            "access-key",
            "add",
            "team/app",
            str(reader.private_path) + ".pub",
            "--label",
            "ci",
            "--json",
        )
    )
    assert added["read_only"] is True
    assert added["fingerprint_sha256"] == reader.fingerprint
    assert added["key"] == " ".join(reader.public_line.split()[:2])
    from_stdin = cli(
        "access-key",
        "add",
        "team/app",
        "-",
        "--label",
        "deploy",
        "--write",
        input=writer.public_line,
    )
    assert "(read/write)" in from_stdin and writer.fingerprint in from_stdin

    keys = json.loads(cli("access-key", "list", "team/app", "--json"))
    assert [(k["label"], k["read_only"], k["last_used"]) for k in keys] == [
        ("ci", True, None),
        ("deploy", False, None),
    ]
    cli("access-key", "update", "team/app", str(added["id"]), "--write", "--label", "ci-2")
    updated = json.loads(cli("access-key", "list", "team/app", "--json"))[0]
    assert (updated["label"], updated["read_only"]) == ("ci-2", False)
    cli("access-key", "remove", "team/app", str(added["id"]), "--yes")
    assert [k["label"] for k in json.loads(cli("access-key", "list", "team/app", "--json"))] == [
        "deploy"
    ]


def test_account_keys(cli: Callable[..., str], make_key: MakeKey) -> None:
    key = make_key("person")
    out = cli("account-key", "add", "team", str(key.private_path) + ".pub", "--label", "laptop")
    assert "added account key 1 to team" in out
    [listed] = json.loads(cli("account-key", "list", "team", "--json"))
    assert (listed["label"], listed["fingerprint_sha256"]) == ("laptop", key.fingerprint)
    cli("account-key", "remove", "team", "1", "--yes")
    assert json.loads(cli("account-key", "list", "team", "--json")) == []


def test_fingerprints(cli: Callable[..., str], tmp_path: Path) -> None:
    out = cli("fingerprints", "--host", "git.example.com", "--listen", "0.0.0.0:2200")
    keys = ensure_host_keys(Settings(data_dir=tmp_path / "data"))
    for key in keys:
        assert key.fingerprint_sha256 in out
        assert f"[git.example.com]:2200 {key.public_line}" in out
    as_json = json.loads(cli("fingerprints", "--json"))
    assert [entry["fingerprint_sha256"] for entry in as_json] == [
        key.fingerprint_sha256 for key in keys
    ]


def test_fingerprints_name_the_host_serve_listens_on_by_default(
    cli: Callable[..., str], tmp_path: Path
) -> None:
    # serve binds 127.0.0.1:2222 and the README clones ssh://git@127.0.0.1:2222/…: ssh looks
    # up "[127.0.0.1]:2222", so a "[localhost]:2222" line would never match (issue 10 §1.13).
    lines = [entry["known_hosts"] for entry in json.loads(cli("fingerprints", "--json"))]
    assert lines and all(line.startswith("[127.0.0.1]:2222 ") for line in lines)
    assert "[127.0.0.1]:2222 " in cli("fingerprints")


def test_errors_are_one_line_with_exit_status(tmp_path: Path, make_key: MakeKey) -> None:
    missing = _repolink(tmp_path, "host", "access-key", "list", "team/ghost")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        missing.stderr.strip()
    ] and missing.stderr.startswith("error: repository_not_found: ")

    private = make_key("oops").private_path
    pasted = _repolink(
        tmp_path,
        "host",
        "account-key",
        "add",
        "team",
        "-",
        "--label",
        "x",
        input=private.read_text(),
    )
    assert pasted.returncode == 2
    assert "key_is_private" in pasted.stderr
    assert "PRIVATE KEY" not in pasted.stderr + pasted.stdout


# -- start-up of OpenSSH mode ------------------------------------------------------------------

# sshd runs `host authorized-keys` and `host shell` on every connection: none of these may be
# imported on the way (the store, already migrated, is opened without Alembic too).
_NOT_FOR_OPENSSH_MODE = (
    "alembic",
    "asyncssh",
    "fastapi",
    "httpx",
    "uvicorn",
    "repolink.cli.host_hooks",
    "repolink.ssh.server_keys",
    "repolink.ssh.server",
)
_REPORT_IMPORTS = """
import atexit, json, sys
from repolink.cli import main
heavy = sys.argv[1].split(",")
atexit.register(lambda: print(json.dumps(sorted(
    name for name in sys.modules if any(name == h or name.startswith(h + ".") for h in heavy)
)), file=sys.stderr))
main(sys.argv[2:])
"""


@pytest.mark.parametrize(
    "command",
    [
        ("host", "authorized-keys", "git", "ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAA"),
        ("host", "shell", "key-access-1"),
    ],
)
def test_openssh_mode_commands_import_only_what_they_need(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    assert _repolink(tmp_path, "host", "repo", "create", "team/app").returncode == 0  # migrates
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env["REPOLINK_DATA_DIR"] = str(tmp_path / "data")
    env.update(database_env(tmp_path / "data"))
    env["SSH_ORIGINAL_COMMAND"] = "git-upload-pack 'team/app.git'"
    result = subprocess.run(
        [sys.executable, "-c", _REPORT_IMPORTS, ",".join(_NOT_FOR_OPENSSH_MODE), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == ""  # an unknown key: no authorized_keys line / no git output
    assert json.loads(result.stderr.strip().splitlines()[-1]) == [], result.stderr


def test_run_fetches_carries_out_queued_runs_and_says_how_each_ended(
    platform: Platform, hosted: HostedRepos
) -> None:
    assert platform.connect("granted", hosted.app.url(), grant_on="app").ok
    platform.connect("refused", hosted.app.url())  # its deploy key was never granted
    sha = hosted.app.commit("queued, then carried out by run-fetches")
    good = platform.app.fetch_requests.request("granted", trigger="push")
    bad = platform.app.fetch_requests.request("refused", trigger="push")
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env["REPOLINK_DATA_DIR"] = str(platform.settings.data_dir)
    env.update(database_env(platform.settings.data_dir))

    result = subprocess.run(
        [sys.executable, "-m", "repolink", "host", "run-fetches", str(good.id), str(bad.id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result.stderr  # one of them failed
    assert f"fetch run {good.id} of granted: done, 1 new commits" in result.stdout
    assert f"fetch run {bad.id} of refused: failed" in result.stdout
    assert "Traceback" not in result.stderr
    newest = platform.app.commits.list_commits("granted", limit=1).commits
    assert [commit.sha for commit in newest] == [sha]


def test_webhook_groups_are_listed_and_suggested(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"REPOLINK_DATA_DIR": str(tmp_path / "data")}
    listed = runner.invoke(app, ["--help"], env=env)
    assert listed.exit_code == 0
    assert re.search(r"│ hook\b", listed.stdout) and re.search(r"│ token\b", listed.stdout)
    typo = runner.invoke(app, ["hok"], env=env)
    assert typo.exit_code == 2
    assert "Did you mean 'hook'?" in typo.output
    tokens = runner.invoke(app, ["token", "list"], env=env)
    assert tokens.exit_code == 0, tokens.output


# -- serve ------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    with serving(tmp_path / "data", {"REPOLINK_ADMIN_TOKEN": "serve-test-token"}) as server:
        yield server


@pytest.mark.sqlite_only("logs the migration of a new data directory's store")
def test_serve_runs_ssh_and_http_until_sigterm(
    served: tuple[subprocess.Popen[str], int, int],
    tmp_path: Path,
    make_key: MakeKey,
    cli: Callable[..., str],
) -> None:
    process, ssh_port, http_port = served
    # Changes made by the CLI reach the running server at once.
    key = make_key("person")
    cli("repo", "create", "team/app")
    cli("account-key", "add", "team", "-", "--label", "p", input=key.public_line)
    # The known_hosts lines `host fingerprints` prints for the address serve was given work
    # as printed with strict host key checking.
    listed_keys = json.loads(cli("fingerprints", "--listen", f"127.0.0.1:{ssh_port}", "--json"))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(f"{entry['known_hosts']}\n" for entry in listed_keys))
    client = GitClient(tmp_path / "home", key, known_hosts, ssh_port)
    listed = client.git("ls-remote", client.url("team/app.git"))
    assert listed.returncode == 0, listed.stderr

    response = httpx.get(
        f"http://127.0.0.1:{http_port}/host/api/2.0/repositories/team",
        headers={"Authorization": "Bearer serve-test-token"},
    )
    assert response.status_code == 200
    assert "team/app" in response.text
    clone_links = [
        link["href"]
        for repository in response.json()["values"]
        for link in repository["links"]["clone"]
    ]
    assert clone_links == [f"ssh://git@127.0.0.1:{ssh_port}/team/app.git"]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    logged = process.stderr.read() if process.stderr else ""
    assert "repolink.store.migrate" in logged  # the server says which migration it ran …
    assert "alembic" not in logged  # … without Alembic's own INFO chatter
