"""Every destructive command takes --yes, asks on a terminal, and without a terminal and
without --yes refuses with ``confirmation_required`` and exit 2, deleting nothing (issue 10
§1.2). The commands are found by walking the real command tree, so a new one cannot forget."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from repolink.cli import confirm
from repolink.errors import RepolinkError, ValidationError
from support.clikit import CLI, command_tree
from support.platformkit import HostedRepos

# A command named so destroys something; it must ask first.
DESTRUCTIVE_NAMES = {"delete", "remove", "revoke", "disconnect", "purge", "drop", "forget"}


def destructive_commands() -> list[tuple[str, ...]]:
    return sorted(path for path, _ in command_tree() if path[-1] in DESTRUCTIVE_NAMES)


def test_every_destructive_command_takes_yes_and_y() -> None:
    found = destructive_commands()
    assert len(found) >= 10
    missing = []
    for path, command in command_tree():
        if path in found:
            options = {name for param in command.params for name in param.opts}
            if not {"--yes", "-y"} <= options:
                missing.append(" ".join(path))
    assert missing == []


@pytest.fixture
def cli(trusting_cli: CLI) -> CLI:
    return trusting_cli


def test_without_a_terminal_and_without_yes_nothing_is_deleted(
    cli: CLI, hosted: HostedRepos, tmp_path: Path
) -> None:
    """Every destructive command of the tree, run on things that exist, by a script that
    forgot --yes: exit 2, ``confirmation_required`` naming --yes, and every list unchanged."""
    public = tmp_path / "k.pub"
    hook = _existing_things(cli, hosted, public)
    listings = [
        ("project", "list"),
        ("repo", "show", "p"),
        ("additional-keys", "list", "p"),
        ("key-rules", "list", "p"),
        ("hostkeys", "list"),
        ("host", "repo", "list", "ws"),
        ("host", "access-key", "list", "ws/r"),
        ("host", "account-key", "list", "ws"),
        ("host", "hook", "list", "ws/r"),
        ("host", "token", "list"),
        ("user", "list"),
        ("token", "list"),
    ]
    before = [cli.json(*listing) for listing in listings]
    extra = before[2][0]["fingerprint_sha256"]
    runs = {
        ("project", "delete"): ["p"],
        ("repo", "disconnect"): ["p"],
        ("additional-keys", "remove"): ["p", extra],
        ("key-rules", "remove"): ["p", "ssh://git@h.example/"],
        ("hostkeys", "remove"): [f"127.0.0.1:{hosted.host.port}"],
        ("host", "repo", "delete"): ["ws/r"],
        ("host", "access-key", "remove"): ["ws/r", str(before[6][0]["id"])],
        ("host", "account-key", "remove"): ["ws", str(before[7][0]["id"])],
        ("host", "hook", "remove"): ["ws/r", hook],
        ("host", "token", "revoke"): [str(before[9][0]["id"])],
        ("user", "delete"): ["jane"],
        ("token", "revoke"): [str(before[11][0]["id"])],
    }
    assert sorted(runs) == destructive_commands(), "give the new destructive command a run here"
    for path, args in runs.items():
        done = cli(*path, *args)
        assert done.returncode == 2, (path, done.stderr)
        assert done.stderr.startswith("error: confirmation_required: "), (path, done.stderr)
        assert done.stderr.rstrip().endswith("— pass --yes to confirm"), done.stderr
        assert "aborted" not in done.stderr
    assert [cli.json(*listing) for listing in listings] == before

    with_yes = cli("host", "token", "revoke", str(before[9][0]["id"]), "-y")
    assert with_yes.returncode == 0, with_yes.stderr


def _existing_things(cli: CLI, hosted: HostedRepos, public: Path) -> str:
    """One of each thing a destructive command deletes, made through the CLI; the hook's uuid."""

    def ok(*args: str) -> str:
        done = cli(*args)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    ok("project", "create", "p")
    # The key is not on the host, so the first fetch fails; the connection is kept.
    assert cli("repo", "connect", "p", hosted.app.url(), "--generate").returncode == 1
    ok("additional-keys", "add", "p", "--generate")
    extra = cli.json("additional-keys", "list", "p")[0]["fingerprint_sha256"]
    ok("key-rules", "add", "p", "ssh://git@h.example/", "--key", extra)
    ok("host", "repo", "create", "ws/r")
    public.write_text(hosted.account.public_line + "\n")
    ok("host", "account-key", "add", "ws", str(public), "--label", "person")
    shown = cli.json("repo", "show", "p")
    access = public.with_name("deploy.pub")
    access.write_text(_public_line(shown) + "\n")
    ok("host", "access-key", "add", "ws/r", str(access), "--label", "ci")
    ok("host", "token", "create")
    ok("user", "create", "jane", "--no-password")
    ok("token", "create", "--user", "jane", "--name", "laptop")
    added = json.loads(
        ok("host", "hook", "add", "ws/r", "https://hooks.example.com/push", "--json")
    )
    return str(added["uuid"])


def _public_line(shown: dict[str, Any]) -> str:
    key = shown["deploy_key"]
    line = key.get("public_key") or key.get("public_line")
    assert isinstance(line, str) and re.match(r"ssh-\S+ AAAA", line), shown
    return line


def test_a_declined_question_exits_1_and_a_terminal_is_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal the question is asked; "no" is ``confirmation_declined`` (exit 1)."""
    import io

    from repolink.cli.errors import exit_code_of

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    with pytest.raises(RepolinkError) as declined:
        confirm.confirm_or_stop("delete project web", yes=False)
    assert declined.value.code == "confirmation_declined"
    assert exit_code_of(declined.value) == 1
    assert "delete project web? [y/N]" in capsys.readouterr().out

    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    confirm.confirm_or_stop("delete project web", yes=False)

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(ValidationError) as required:
        confirm.confirm_or_stop("delete project web", yes=False)
    assert (required.value.code, exit_code_of(required.value)) == ("confirmation_required", 2)
    confirm.confirm_or_stop("delete project web", yes=True)
