"""`repolink project|repo|fetch|commits|refs` as real processes against the built-in host."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.clikit import CLI
from support.fixtures import HOST_API_TOKEN
from support.platformkit import WORKSPACE, HostedRepos

PUBLIC_LINE = re.compile(r"^ssh-ed25519 AAAA\S+", re.MULTILINE)


@pytest.fixture
def cli(trusting_cli: CLI) -> CLI:
    return trusting_cli


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
    assert (
        "`repolink repo show web --public-key | repolink host access-key add team/app - "
        "--label web`" in shown_text
    )

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


def _connect_registering(cli: CLI, project: str, url: str, *args: str, token: str) -> Any:
    return cli(
        *("repo", "connect", project, url, "--generate", "--register-on-host", *args),
        env={"REPOLINK_HOST_API_TOKEN": token},
    )


def test_register_on_host_makes_the_seed_flow_one_command(
    cli: CLI, hosted: HostedRepos, host_api: str
) -> None:
    """One story: registered, then fetched — never "add this public key" as well (issue 10
    §1.8); the API's URL from --host-api or REPOLINK_HOST_API_URL, the token from the
    environment only."""
    assert cli("project", "create", "oneshot").returncode == 0
    done = cli(
        *("repo", "connect", "oneshot", hosted.other.url(), "--generate", "--register-on-host"),
        env={
            "REPOLINK_HOST_API_TOKEN": HOST_API_TOKEN,
            # a repolink host's address is enough
            "REPOLINK_HOST_API_URL": host_api.removesuffix("/host/api/2.0"),
        },
    )

    assert done.returncode == 0, done.stderr
    port = host_api.split(":")[2].split("/")[0]
    lines = done.stdout.strip().splitlines()
    assert lines[-2:] == [
        f"registered as a read-only access key of {WORKSPACE}/other on 127.0.0.1:{port}; fetching…",
        f"{len(hosted.other.host_commits())} new commits",
    ]
    assert "add this public key" not in done.stdout.lower()
    keys = hosted.host.service.list_access_keys(WORKSPACE, "other")
    registered = [key for key in keys if key.label == "repolink oneshot"]
    assert len(registered) == 1 and registered[0].read_only
    assert HOST_API_TOKEN not in done.stdout + done.stderr
    shown = cli.json("repo", "show", "oneshot")
    assert shown["registered_on"] == host_api

    # Registering again is idempotent: the key is there, nothing is added twice.
    again = cli("repo", "register", "oneshot", env={"REPOLINK_HOST_API_TOKEN": HOST_API_TOKEN})
    assert again.returncode == 0, again.stderr
    assert f"already a read-only access key of {WORKSPACE}/other" in again.stdout
    assert again.stdout.strip().endswith("0 new commits")
    assert len(hosted.host.service.list_access_keys(WORKSPACE, "other")) == len(keys)


def test_a_failed_registration_is_retried_on_the_same_connection(
    cli: CLI, hosted: HostedRepos, host_api: str
) -> None:
    """A bad token leaves the connection saved; `repo register` adds the same key (issue 10
    §1.8)."""
    refused = _connect_registering(
        cli, "refused", hosted.other.url(), "--host-api", host_api, token="wrong-token"
    )
    assert refused.returncode == 2  # no such project yet: refused before anything is saved
    assert cli("project", "create", "refused").returncode == 0
    refused = _connect_registering(
        cli, "refused", hosted.other.url(), "--host-api", host_api, token="wrong-token"
    )
    assert refused.returncode == 1
    assert "error: host_api_unauthorized:" in refused.stderr
    assert "repolink repo register refused" in refused.stderr
    assert "REPOLINK_HOST_API_TOKEN" in refused.stderr
    assert "wrong-token" not in refused.stdout + refused.stderr
    assert "add this public key" not in refused.stdout.lower()
    first = cli.json("repo", "show", "refused")
    assert first["state"] == "failed" and first["error"]["code"] == "host_api_unauthorized"
    assert first["registered_on"] is None

    retried = cli(
        "repo",
        "register",
        "refused",
        "--host-api",
        host_api,
        env={"REPOLINK_HOST_API_TOKEN": HOST_API_TOKEN},
    )
    assert retried.returncode == 0, retried.stderr
    assert "registered as a read-only access key" in retried.stdout
    assert retried.stdout.strip().endswith(f"{len(hosted.other.host_commits())} new commits")
    shown = cli.json("repo", "show", "refused")
    assert shown["state"] == "ok" and shown["registered_on"] == host_api
    fingerprint = first["deploy_key"]["fingerprint_sha256"]
    assert shown["deploy_key"]["fingerprint_sha256"] == fingerprint  # no new key
    on_host = hosted.host.service.list_access_keys(WORKSPACE, "other")
    assert [key.fingerprint_sha256 for key in on_host if key.label == "repolink refused"] == [
        fingerprint
    ]


def test_register_on_host_without_its_api_or_token_names_both_ways(
    cli: CLI, hosted: HostedRepos
) -> None:
    assert cli("project", "create", "noapi").returncode == 0
    missing = cli(
        "repo", "connect", "noapi", hosted.other.url(), "--generate", "--register-on-host"
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: host_api_missing:")
    for way in ("--host-api", "REPOLINK_HOST_API_URL", "REPOLINK_HOST_API_TOKEN"):
        assert way in missing.stderr
    malformed = _connect_registering(
        cli, "noapi", hosted.other.url(), "--host-api", "ftp://nowhere", token="t"
    )
    assert malformed.returncode == 2
    assert malformed.stderr.startswith("error: host_api_invalid:")
    # Refused before anything was saved.
    assert cli("repo", "show", "noapi").stderr.startswith("error: connection_not_found:")


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
        env={"REPOLINK_HOST_API_TOKEN": HOST_API_TOKEN},
    )
    assert status(not_on_host) == (1, "host_repository_not_found")

    untrusting = CLI(tmp_path / "untrusting", cli.home, cli.capsys, cli.monkeypatch)
    assert untrusting("project", "create", "unknown-host").returncode == 0
    unknown = untrusting("repo", "connect", "unknown-host", hosted.app.url(), "--generate")
    assert status(unknown) == (1, "host_key_unknown")


def test_polling_is_turned_on_shown_and_off(cli: CLI, hosted: HostedRepos) -> None:
    assert cli("project", "create", "polled").returncode == 0
    cli("repo", "connect", "polled", hosted.app.url(), "--generate")  # saved, fetch refused

    on = cli("repo", "poll", "polled", "15")
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == "project polled: fetched every 15 minutes"
    assert cli.json("repo", "show", "polled")["poll_interval_minutes"] == 15
    assert "every 15 minutes" in cli("repo", "show", "polled").stdout

    bad = cli("repo", "poll", "polled", "1441")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: poll_interval_invalid:")

    assert cli.json("repo", "poll", "polled", "0") == {
        "project": "polled",
        "poll_interval_minutes": None,
    }
    assert cli.json("repo", "show", "polled")["poll_interval_minutes"] is None
