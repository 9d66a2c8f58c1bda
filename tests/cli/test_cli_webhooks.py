"""``repolink webhooks show|rotate-secret`` on a local data directory."""

from __future__ import annotations

import json

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN
from repolink.settings import Settings
from repolink.signing import sign_body
from support.clikit import CLI


@pytest.fixture
def cli(fresh_cli: CLI) -> CLI:
    assert fresh_cli("project", "create", "App").returncode == 0
    return fresh_cli


def deliver(cli: CLI, secret: str, delivery: str = "d-1") -> str:
    """One signed GitHub push for project ``app`` (not connected), through the service."""
    body = json.dumps({"repository": {"ssh_url": "git@forge.example:team/app.git"}}).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign_body(secret.encode(), body),
    }
    with Repolink(Settings(data_dir=cli.data_dir)) as app:
        return app.webhooks_in.receive("github", "app", headers, body).outcome


def test_show_lists_the_receivers_and_says_there_is_no_secret_yet(cli: CLI) -> None:
    done = cli("webhooks", "show", "app")
    assert done.returncode == 0, done.stderr
    assert "github:           /hooks/github/app" in done.stdout
    assert "bitbucket-server: /hooks/bitbucket-server/app" in done.stdout
    assert "secret:           none yet" in done.stdout
    assert "no deliveries received" in done.stdout
    # Showing made no secret.
    assert cli.json("webhooks", "show", "app")["secret_set"] is False


def test_reveal_makes_the_secret_once_and_shows_the_same_one_after(cli: CLI) -> None:
    shown = cli.json("webhooks", "show", "app", "--reveal-secret")
    secret = shown["secret"]
    assert secret.startswith("rlwh_") and shown["secret_set"] is True
    assert cli.json("webhooks", "show", "app", "--reveal-secret")["secret"] == secret
    hidden = cli("webhooks", "show", "app")
    assert secret not in hidden.stdout
    assert "set (print it with --reveal-secret)" in hidden.stdout


def test_absolute_urls_from_a_base_url(cli: CLI) -> None:
    shown = cli.json("webhooks", "show", "app", "--base-url", "https://rl.example.com/base/")
    assert shown["urls"]["gitlab"] == "https://rl.example.com/base/hooks/gitlab/app"
    assert sorted(shown["urls"]) == ["bitbucket", "bitbucket-server", "generic", "github", "gitlab"]
    refused = cli("webhooks", "show", "app", "--base-url", "ftp://x")
    assert refused.returncode == 2
    assert "base_url_invalid" in refused.stderr


def test_deliveries_are_listed_newest_first(cli: CLI) -> None:
    secret = cli.json("webhooks", "show", "app", "--reveal-secret")["secret"]
    assert deliver(cli, secret, "d-1") == "not_connected"
    assert deliver(cli, secret, "d-1") == "replayed"
    listed = cli.json("webhooks", "show", "app")["deliveries"]
    assert [(d["delivery_id"], d["outcome"]) for d in listed] == [
        ("d-1", "replayed"),
        ("d-1", "not_connected"),
    ]
    table = cli("webhooks", "show", "app").stdout
    assert "replayed" in table and "github" in table and "d-1" in table


def test_rotate_secret_asks_then_prints_the_new_secret_once(cli: CLI) -> None:
    old = cli.json("webhooks", "show", "app", "--reveal-secret")["secret"]
    unconfirmed = cli("webhooks", "rotate-secret", "app")
    assert unconfirmed.returncode == 2
    assert "confirmation_required" in unconfirmed.stderr
    done = cli("webhooks", "rotate-secret", "app", "--yes")
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip()
    assert new.startswith("rlwh_") and new != old
    assert cli.json("webhooks", "show", "app", "--reveal-secret")["secret"] == new
    assert cli.json("webhooks", "rotate-secret", "app", "--yes")["secret"] != new
    with Repolink(Settings(data_dir=cli.data_dir)) as app:
        entries = app.audit.entries(LOCAL_ADMIN, project="app", limit=10).items
    assert [(e.action, e.actor) for e in reversed(entries) if e.action.startswith("webhook")] == [
        ("webhook_secret.create", "local-admin"),
        ("webhook_secret.rotate", "local-admin"),
        ("webhook_secret.rotate", "local-admin"),
    ]


def test_an_unknown_project_is_not_found_and_nothing_is_asked(cli: CLI) -> None:
    for args in (("show", "nope"), ("show", "nope", "--reveal-secret"), ("rotate-secret", "nope")):
        done = cli("webhooks", *args)
        assert done.returncode == 2, done.stderr
        assert "project_not_found" in done.stderr
