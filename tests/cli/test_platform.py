"""`repolink project|repo|fetch|commits|refs` as real processes against the built-in host."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from repolink.app import Repolink
from repolink.http.host_api import create_host_api
from repolink.settings import Settings
from repolink.store import Store
from support.clikit import CLI
from support.platformkit import WORKSPACE, HostedRepos, Platform

API_TOKEN = "platform-cli-test-admin-token"
PUBLIC_LINE = re.compile(r"^ssh-ed25519 AAAA\S+", re.MULTILINE)


@pytest.fixture
def cli(
    tmp_path: Path,
    hosted: HostedRepos,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> CLI:
    settings = Settings(data_dir=tmp_path / "data")
    with Store.open(settings) as store:
        Platform(settings, store, hosted.host).trust_host()
    (tmp_path / "home").mkdir()
    return CLI(settings.data_dir, tmp_path / "home", capsys, monkeypatch)


def test_projects_are_created_listed_and_deleted(cli: CLI) -> None:
    created = cli("project", "create", "API Server")
    assert created.returncode == 0, created.stderr
    assert "created project api-server" in created.stdout

    again = cli("project", "create", "API server")
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [again.stderr.strip()]  # one line, no traceback
    assert again.stderr.startswith("error: project_exists:")
    # The service's hint is adapter-neutral; the CLI names its own option.
    assert again.stderr.rstrip().endswith("— choose another name or give another --slug")

    listed = cli.json("project", "list")
    assert [(p["slug"], p["name"], p["connected"]) for p in listed] == [
        ("api-server", "API Server", False)
    ]
    assert cli("project", "delete", "api-server", "--yes").returncode == 0
    assert cli.json("project", "list") == []


def test_generated_key_is_shown_the_fetch_diagnosed_then_fixed(
    cli: CLI, hosted: HostedRepos
) -> None:
    assert cli("project", "create", "web").returncode == 0
    connect = cli("repo", "connect", "web", hosted.app.url(), "--generate", real_process=True)

    # The public key, both fingerprints and the one-line instruction, before the fetch …
    assert connect.returncode == 1
    public = PUBLIC_LINE.search(connect.stdout)
    assert public is not None
    assert re.search(r"^SHA256:\S{43}$", connect.stdout, re.MULTILINE)
    assert re.search(r"^MD5:(?:[0-9a-f]{2}:){15}[0-9a-f]{2}$", connect.stdout, re.MULTILINE), (
        connect.stdout
    )
    assert "read-only access key" in connect.stdout
    # … then the diagnosis with its fix; the connection is kept.
    assert "error: auth_failed:" in connect.stderr
    assert public.group(0).split()[1] in connect.stderr
    assert "repolink fetch web" in connect.stderr
    shown = cli.json("repo", "show", "web")
    assert shown["state"] == "failed" and shown["error"]["code"] == "auth_failed"
    assert "PRIVATE" not in connect.stdout + connect.stderr + json.dumps(shown)
    # The stored diagnosis is worded by the CLI as the live error was: with the host command.
    assert "repolink host access-key add" not in shown["error"]["hint"]
    shown_text = " ".join(cli("repo", "show", "web").stdout.split())
    assert "`repolink host access-key add WORKSPACE/SLUG KEY.pub --label LABEL`" in shown_text

    hosted.host.service.add_access_key(WORKSPACE, "app", public.group(0), label="web")
    fetched = cli("fetch", "web", real_process=True)
    assert fetched.returncode == 0, fetched.stderr
    count = len(hosted.app.host_commits())
    assert fetched.stdout.strip().splitlines()[-1] == f"{count} new commits"
    assert "Indexing commits" in fetched.stderr  # the progress bar's last frame

    refreshed = cli("fetch", "web")
    assert refreshed.returncode == 0
    assert "up to date" in refreshed.stdout
    assert refreshed.stdout.strip().splitlines()[-1] == "0 new commits"
    shown = cli.json("repo", "show", "web")
    assert shown["state"] == "ok" and shown["error"] is None
    assert shown["commits"] == count
    assert shown["deploy_key"]["last_used_at"] is not None


def test_key_imported_from_stdin_with_a_passphrase_file(
    cli: CLI, hosted: HostedRepos, tmp_path: Path
) -> None:
    key = tmp_path / "deploy"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret pass", "-f", str(key)], check=True
    )
    hosted.host.service.add_access_key(
        WORKSPACE, "app", key.with_suffix(".pub").read_text(), label="imported"
    )
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("s3cret pass\n")
    assert cli("project", "create", "imported").returncode == 0

    done = cli(
        "repo",
        "connect",
        "imported",
        hosted.app.url(),
        "--key",
        "-",
        "--passphrase-file",
        str(passphrase),
        input=key.read_bytes(),
    )

    assert done.returncode == 0, done.stderr
    assert "imported ssh-ed25519 deploy key" in done.stdout
    assert done.stdout.strip().endswith(f"{len(hosted.app.host_commits())} new commits")
    assert "PRIVATE" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["https://bitbucket.org/team/app.git", "--generate"], "invalid_url"),
        (["git@example.com:team/app.git", "--key", "-"], "key_missing_footer"),
        (["git@example.com:team/app.git"], "key_choice_required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: CLI, args: list[str], code: str) -> None:
    assert cli("project", "create", "bad").returncode == 0
    done = cli("repo", "connect", "bad", *args, input=b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAA\n")

    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {code}:")
    assert len(done.stderr.strip().splitlines()) == 1
    assert cli.json("project", "list")[0]["connected"] is False


def test_commits_pages_search_hide_unhide_and_refs(cli: CLI, hosted: HostedRepos) -> None:
    assert cli("project", "create", "picker").returncode == 0
    connect = cli("repo", "connect", "picker", hosted.app.url(), "--generate")
    public = PUBLIC_LINE.search(connect.stdout)
    assert public is not None
    hosted.host.service.add_access_key(WORKSPACE, "app", public.group(0), label="picker")
    assert cli("fetch", "picker").returncode == 0
    main = hosted.app.host_commits("main")

    first = cli.json("commits", "picker", "--limit", "3")
    assert [c["sha"] for c in first["commits"]] == main[:3]
    second = cli.json("commits", "list", "picker", "--limit", "3", "--cursor", first["next_cursor"])
    assert [c["sha"] for c in second["commits"]] == main[3:6]
    by_ref = cli.json("commits", "picker", "--ref", "feature", "--limit", "100")
    assert [c["sha"] for c in by_ref["commits"]] == hosted.app.host_commits("feature")
    found = cli.json("commits", "picker", "--search", main[2][:9])
    assert [c["sha"] for c in found["commits"]] == [main[2]]

    hidden = cli("commits", "hide", "picker", main[0][:12], main[1])
    assert hidden.returncode == 0, hidden.stderr
    assert hidden.stdout.split() == ["hidden", main[0], "hidden", main[1]]
    visible = [c["sha"] for c in cli.json("commits", "picker", "--limit", "100")["commits"]]
    assert visible == main[2:]
    everything = cli.json("commits", "picker", "--limit", "100", "--include-hidden")["commits"]
    assert [c["sha"] for c in everything if c["hidden"]] == main[:2]
    assert cli("commits", "unhide", "picker", main[0], main[1]).returncode == 0
    assert [c["sha"] for c in cli.json("commits", "picker", "--limit", "100")["commits"]] == main

    table = cli("commits", "picker", "--limit", "2")
    assert table.returncode == 0
    assert main[0][:12] in table.stdout and "commit" in table.stdout
    assert "more: --cursor" in table.stdout
    refs = {ref["name"]: ref for ref in cli.json("refs", "picker")}
    assert refs["refs/heads/main"]["commit_sha"] == main[0]
    assert refs["refs/tags/v1.1"]["kind"] == "tag"
    missing = cli("commits", "hide", "picker", "0" * 40)
    assert missing.returncode == 2 and missing.stderr.startswith("error: commit_not_found:")


@pytest.fixture
def host_api(hosted: HostedRepos) -> Iterator[str]:
    """The built-in host's HTTP API on a real uvicorn server, sharing the host's store."""
    settings = Settings(data_dir=hosted.host.settings.data_dir, admin_token=API_TOKEN)
    app = create_host_api(Repolink(settings, store=hosted.host.store))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/host/api/2.0"
    finally:
        server.should_exit = True
        thread.join(10)


def test_register_on_host_makes_the_seed_flow_one_command(
    cli: CLI, hosted: HostedRepos, host_api: str
) -> None:
    assert cli("project", "create", "oneshot").returncode == 0
    done = cli(
        "repo",
        "connect",
        "oneshot",
        hosted.other.url(),
        "--generate",
        "--register-on-host",
        "--host-api",
        host_api.removesuffix("/host/api/2.0"),  # a repolink host's address is enough
        env={"REPOLINK_HOST_API_TOKEN": API_TOKEN},
    )

    assert done.returncode == 0, done.stderr
    assert "added as a read-only access key on the host" in done.stdout
    assert done.stdout.strip().endswith(f"{len(hosted.other.host_commits())} new commits")
    keys = hosted.host.service.list_access_keys(WORKSPACE, "other")
    registered = [key for key in keys if key.label == "repolink oneshot"]
    assert len(registered) == 1 and registered[0].read_only
    assert API_TOKEN not in done.stdout + done.stderr

    refused = cli(
        "repo",
        "connect",
        "refused",
        hosted.other.url(),
        "--generate",
        "--register-on-host",
        "--host-api",
        host_api,
        env={"REPOLINK_HOST_API_TOKEN": "wrong-token"},
    )
    assert refused.returncode == 2  # no such project yet: refused before anything is saved
    assert cli("project", "create", "refused").returncode == 0
    refused = cli(
        "repo",
        "connect",
        "refused",
        hosted.other.url(),
        "--generate",
        "--register-on-host",
        "--host-api",
        host_api,
        env={"REPOLINK_HOST_API_TOKEN": "wrong-token"},
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: host_api_unauthorized:")
    assert "wrong-token" not in refused.stdout + refused.stderr


def test_user_text_prints_literally_not_as_markup(cli: CLI, hosted: HostedRepos) -> None:
    """Rich markup is off for user data: a subject "[docs] …" and the "[hidden]" marker keep
    their brackets in every table (issue 10 §1.1)."""
    sha = hosted.app.commit("[docs] update readme [/] [bold]x")
    assert cli("project", "create", "Markup [b]test[/b]", "--slug", "markup").returncode == 0
    connect = cli("repo", "connect", "markup", hosted.app.url(), "--generate")
    public = PUBLIC_LINE.search(connect.stdout)
    assert public is not None
    hosted.host.service.add_access_key(WORKSPACE, "app", public.group(0), label="markup")
    assert cli("fetch", "markup").returncode == 0

    listed = cli("commits", "markup", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    assert "[docs] update readme [/] [bold]x" in listed.stdout
    assert "Markup [b]test[/b]" in cli("project", "list").stdout

    assert cli("commits", "hide", "markup", sha).returncode == 0
    hidden = cli("commits", "markup", "--limit", "1", "--include-hidden")
    assert hidden.returncode == 0, hidden.stderr
    assert "[hidden] [docs] update readme" in hidden.stdout
    refs = cli("refs", "markup")
    assert refs.returncode == 0, refs.stderr
    assert "[hidden] [docs] update readme" in refs.stdout


def test_one_exit_status_rule_across_one_flow(
    cli: CLI, hosted: HostedRepos, host_api: str, tmp_path: Path
) -> None:
    """2 when the input is wrong; 1 when the operation was tried and failed — a remote host
    API's "no such repository" included, which used to exit 2 (issue 10 §1.2)."""

    def status(done: subprocess.CompletedProcess[str]) -> tuple[int, str]:
        assert "Traceback" not in done.stderr
        code = re.search(r"^error: (\w+):", done.stderr, re.MULTILINE)
        return done.returncode, code.group(1) if code else done.stderr

    for project in ("auth", "missing", "unknown-host"):
        assert cli("project", "create", project).returncode == 0
    assert status(cli("fetch", "no-such-project")) == (2, "project_not_found")
    https = cli("repo", "connect", "auth", "https://127.0.0.1/team/app.git", "--generate")
    assert status(https) == (2, "invalid_url")

    assert status(cli("repo", "connect", "auth", hosted.app.url(), "--generate")) == (
        1,
        "auth_failed",
    )
    not_on_host = cli(
        *("repo", "connect", "missing", hosted.app.url().replace("/app.git", "/nothing.git")),
        *("--generate", "--register-on-host", "--host-api", host_api),
        env={"REPOLINK_HOST_API_TOKEN": API_TOKEN},
    )
    assert status(not_on_host) == (1, "host_repository_not_found")

    untrusting = CLI(tmp_path / "untrusting", cli.home, cli.capsys, cli.monkeypatch)
    assert untrusting("project", "create", "unknown-host").returncode == 0
    unknown = untrusting("repo", "connect", "unknown-host", hosted.app.url(), "--generate")
    assert status(unknown) == (1, "host_key_unknown")
