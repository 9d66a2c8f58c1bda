"""``repolink user …`` and ``repolink token …`` on the local data directory: passwords never
on argv, tokens printed once, --json on reads, exit 2 for bad input and 1 for a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.settings import Settings
from support.accountskit import PASSWORD
from support.clikit import CLI


@pytest.fixture
def cli(fresh_cli: CLI) -> CLI:
    return fresh_cli


def check_password(cli: CLI, username: str, password: str) -> bool:
    with Repolink(Settings(data_dir=cli.data_dir)) as application:
        return application.users.check_password(username, password) is not None


def test_user_create_from_a_file_from_stdin_and_without_password(cli: CLI, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    created = cli("user", "create", "jane", "--password-file", str(secret))
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "created user jane"
    piped = cli("user", "create", "root", "--site-admin", input=b"another long password\n")
    assert piped.returncode == 0, piped.stderr
    assert cli("user", "create", "ci-bot", "--no-password").returncode == 0
    listed = cli.json("user", "list")
    assert [(u["username"], u["site_admin"], u["has_password"]) for u in listed] == [
        ("ci-bot", False, False),
        ("jane", False, True),
        ("root", True, True),
    ]
    assert check_password(cli, "jane", PASSWORD)
    assert check_password(cli, "root", "another long password")
    text = cli("user", "list").stdout
    assert "jane" in text and PASSWORD not in text


def test_a_bad_password_or_name_is_exit_2_and_never_echoed(cli: CLI) -> None:
    short = cli("user", "create", "jane", input=b"hunter2\n")
    assert short.returncode == 2
    assert short.stderr.startswith("error: password_invalid: ")
    assert "hunter2" not in short.stderr + short.stdout
    bad = cli("user", "create", "Jane Doe", "--no-password")
    assert bad.returncode == 2 and "username_invalid" in bad.stderr
    assert cli.json("user", "list") == []


def test_there_is_no_password_option(cli: CLI) -> None:
    refused = cli("user", "create", "jane", "--password", PASSWORD)
    assert refused.returncode == 2
    assert PASSWORD not in refused.stderr + refused.stdout


def test_set_password_and_delete(cli: CLI) -> None:
    assert cli("user", "create", "jane", input=PASSWORD.encode()).returncode == 0
    changed = cli("user", "set-password", "jane", input=b"a brand new password\n")
    assert changed.returncode == 0, changed.stderr
    assert check_password(cli, "jane", "a brand new password")
    missing = cli("user", "set-password", "nobody", input=b"a brand new password\n")
    assert missing.returncode == 2
    assert "user_not_found" in missing.stderr

    unconfirmed = cli("user", "delete", "jane")
    assert unconfirmed.returncode == 2 and "confirmation_required" in unconfirmed.stderr
    deleted = cli("user", "delete", "jane", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert cli.json("user", "list") == []


def test_tokens_create_list_revoke(cli: CLI) -> None:
    assert cli("user", "create", "jane", "--no-password").returncode == 0
    created = cli("token", "create", "--user", "jane", "--name", "laptop", "--expires-in", "30d")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("rlp_")
    assert "shown only now" in created.stderr
    made = cli.json("token", "create", "--user", "jane", "--name", "ci")
    assert made["token"].startswith("rlp_") and made["expires_at"] is None

    (laptop, _ci) = cli.json("token", "list", "--user", "jane")
    assert (laptop["name"], laptop["user"], laptop["prefix"]) == ("laptop", "jane", token[:8])
    assert laptop["expires_at"] is not None
    listing = cli("token", "list")
    assert token not in listing.stdout + listing.stderr
    assert token[8:20] not in listing.stdout

    assert cli("token", "revoke", str(laptop["id"]), "--yes").returncode == 0
    assert [t["name"] for t in cli.json("token", "list")] == ["ci"]
    assert [t["name"] for t in cli.json("token", "list", "--all")] == ["laptop", "ci"]
    with Repolink(Settings(data_dir=cli.data_dir)) as application:
        assert application.api_tokens.authenticate(token) is None
        assert application.api_tokens.authenticate(made["token"]) is not None


@pytest.mark.parametrize("duration", ["30", "0d", "1y", "-5d", "d"])
def test_a_bad_lifetime_is_exit_2(cli: CLI, duration: str) -> None:
    assert cli("user", "create", "jane", "--no-password").returncode == 0
    refused = cli("token", "create", "--user", "jane", "--name", "x", "--expires-in", duration)
    assert refused.returncode == 2
    assert "duration_invalid" in refused.stderr


def test_a_token_for_nobody_and_revoking_nothing(cli: CLI) -> None:
    missing = cli("token", "create", "--user", "nobody", "--name", "x")
    assert missing.returncode == 2 and "user_not_found" in missing.stderr
    nothing = cli("token", "revoke", "99", "--yes")
    assert nothing.returncode == 2 and "token_not_found" in nothing.stderr


def test_host_tokens_are_the_owner_less_site_admin_tokens(cli: CLI) -> None:
    assert cli("user", "create", "jane", "--no-password").returncode == 0
    assert cli("token", "create", "--user", "jane", "--name", "laptop").returncode == 0
    host = cli("host", "token", "create", "--label", "automation")
    assert host.returncode == 0 and host.stdout.strip().startswith("rlh_")
    assert [t["label"] for t in cli.json("host", "token", "list")] == ["automation"]
    assert {(t["name"], t["user"]) for t in cli.json("token", "list")} == {
        ("laptop", "jane"),
        ("automation", None),
    }
