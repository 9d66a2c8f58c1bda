"""`repolink host hook …` and `repolink host token …`.

Most cases run the commands in process (each start of the installed command costs over a
second); one runs the installed command, to check the exit status and the one-line error.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from repolink.auth.tokens import verify_token
from repolink.cli.host_hooks import hook_app, token_app
from repolink.errors import RepolinkError
from repolink.git.runner import HardenedRunner
from repolink.host.events import RefUpdate
from repolink.host.service import HostService
from repolink.host.webhooks import build_push_payload, enqueue_push_event, sign_body
from repolink.settings import Settings
from repolink.store import Store

REPOLINK = Path(sys.executable).with_name("repolink")
SECRET_KEY = base64.b64encode(bytes(range(32))).decode()
Run = Callable[..., Result]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key=SecretStr(SECRET_KEY))


@pytest.fixture
def environment(tmp_path: Path, settings: Settings) -> dict[str, str]:
    return {
        "HOME": str(tmp_path / "home"),
        "REPOLINK_DATA_DIR": str(settings.data_dir),
        "REPOLINK_SECRET_KEY": SECRET_KEY,
        "COLUMNS": "200",
    }


@pytest.fixture
def repolink(environment: dict[str, str]) -> Run:
    """``repolink host …`` in process: exit code, stdout, stderr and any exception."""
    app = typer.Typer()
    app.add_typer(hook_app, name="hook")
    app.add_typer(token_app, name="token")
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=stdin, env=environment)

    return run


@pytest.fixture
def repository(settings: Settings) -> str:
    if shutil.which("git") is None:
        pytest.skip("git is not installed; hosted repositories are real bare repositories")
    with Store.open(settings) as store:
        HostService(settings, store, runner=HardenedRunner()).create_repository("acme", "widgets")
    return "acme/widgets"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/push", received
    server.shutdown()
    server.server_close()


# -- tokens ---------------------------------------------------------------------------------


def test_token_is_printed_once_and_works_until_revoked(repolink: Run, settings: Settings) -> None:
    created = repolink("token", "create", "--label", "platform CI")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("rlh_")
    assert "shown only now" in created.stderr
    assert token not in created.stderr

    listed = repolink("token", "list", "--json")
    assert listed.exit_code == 0
    (entry,) = json.loads(listed.stdout)
    assert entry["label"] == "platform CI"
    assert entry["revoked_at"] is None
    assert token not in listed.stdout
    assert token not in repolink("token", "list").stdout

    with Store.open(settings) as store, store.session() as session:
        assert verify_token(session, settings, token)
    stored = b"".join(path.read_bytes() for path in settings.data_dir.glob("repolink.db*"))
    assert token.encode() not in stored

    revoked = repolink("token", "revoke", str(entry["id"]), "--yes")
    assert revoked.exit_code == 0, revoked.output
    with Store.open(settings) as store, store.session() as session:
        assert not verify_token(session, settings, token)
    assert json.loads(repolink("token", "list", "--json").stdout) == []
    assert len(json.loads(repolink("token", "list", "--all", "--json").stdout)) == 1

    again = repolink("token", "revoke", str(entry["id"]), "--yes")
    assert error_code(again) == "token_not_found"


# -- hooks ----------------------------------------------------------------------------------


def test_hook_add_list_remove_never_prints_the_secret(
    repolink: Run, repository: str, tmp_path: Path
) -> None:
    secret = "cli-secret-that-must-stay-hidden"
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret + "\n")
    added = repolink(
        "hook", "add", repository, "https://ci.example/push", "--secret-file", str(secret_file)
    )
    assert added.exit_code == 0, added.output
    assert "signed" in added.stdout
    assert secret not in added.stdout + added.stderr

    listed = repolink("hook", "list", repository, "--json")
    (hook,) = json.loads(listed.stdout)
    assert hook["url"] == "https://ci.example/push"
    assert hook["events"] == ["repo:push"]
    assert hook["secret_set"] is True
    assert secret not in listed.stdout
    table = repolink("hook", "list", repository)
    assert hook["uuid"] in table.stdout
    assert secret not in table.stdout

    removed = repolink("hook", "remove", repository, hook["uuid"], "--yes")
    assert removed.exit_code == 0, removed.output
    assert json.loads(repolink("hook", "list", repository, "--json").stdout) == []


def test_hook_secret_from_stdin(repolink: Run, repository: str) -> None:
    added = repolink(
        "hook", "add", repository, "http://127.0.0.1:9/", "--secret-file", "-", "--json",
        stdin="from-stdin\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["secret_set"] is True
    assert "from-stdin" not in added.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["ftp://example.com/"], "hook_url_invalid"),
        (["https://example.com/", "--event", "repo:fork"], "hook_event_unsupported"),
        (["https://example.com/", "--secret", "a", "--secret-file", "-"], "hook_secret_conflict"),
        (
            ["https://example.com/", "--secret-file", "/nonexistent/secret"],
            "hook_secret_file_unreadable",
        ),
    ],
)
def test_bad_hook_add_is_refused(
    repolink: Run, repository: str, args: list[str], code: str
) -> None:
    assert error_code(repolink("hook", "add", repository, *args)) == code


def test_hook_on_a_missing_repository(repolink: Run, repository: str) -> None:
    assert error_code(repolink("hook", "list", "acme/nothing")) == "repository_not_found"
    assert error_code(repolink("hook", "list", "not a name")) == "repository_name_invalid"
    assert error_code(repolink("hook", "remove", repository, "nope", "--yes")) == "hook_not_found"


def run_installed(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``repolink`` with only ``environment``'s settings (no test defaults)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    return subprocess.run(
        [str(REPOLINK), *args],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_installed_command_exits_2_with_one_line(
    environment: dict[str, str], repository: str
) -> None:
    result = run_installed(
        environment, "host", "hook", "add", repository, "ftp://user:hunter2@example.com/"
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: hook_url_invalid: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr


def test_hook_on_the_metadata_address_exits_2_naming_the_setting(
    environment: dict[str, str], repository: str
) -> None:
    # Without REPOLINK_ALLOWED_NETWORKS, as a production host runs (issue 10 §3.5).
    result = run_installed(
        environment, "host", "hook", "add", repository, "http://169.254.169.254/latest/"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: webhook_url_forbidden: "), result.stderr
    assert "REPOLINK_ALLOWED_NETWORKS" in result.stderr


def test_deliver_sends_pending_deliveries_and_deliveries_lists_them(
    repolink: Run,
    repository: str,
    settings: Settings,
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, received = receiver
    added = repolink("hook", "add", repository, url, "--secret", "abc", "--json")
    hook = json.loads(added.stdout)
    with Store.open(settings) as store:
        repo = HostService(settings, store, runner=HardenedRunner()).get_repository(
            "acme", "widgets"
        )
        payload = build_push_payload(
            repo, [RefUpdate("refs/heads/main", None, "a" * 40)], ssh_clone_url=None
        )
        with store.session() as session:
            (delivery_id,) = enqueue_push_event(session, repo.id, payload)

    pending = json.loads(repolink("hook", "deliveries", repository, hook["uuid"], "--json").stdout)
    assert [(item["id"], item["status"]) for item in pending] == [(delivery_id, "pending")]

    delivered = repolink("hook", "deliver")
    assert delivered.exit_code == 0, delivered.output
    assert "delivered 1, failed 0" in delivered.stdout
    (headers, body), *_ = received
    assert headers["X-Hub-Signature"] == sign_body(b"abc", body)
    assert headers["X-Hook-UUID"] == hook["uuid"]

    listed = repolink("hook", "deliveries", repository, hook["uuid"], "--json")
    (item,) = json.loads(listed.stdout)
    assert item["status"] == "delivered"
    assert item["attempts"] == 1
    assert item["last_response_code"] == 204
    assert item["request_uuid"] == headers["X-Request-UUID"]
    assert item["updated_at"].endswith("+00:00")
    table = repolink("hook", "deliveries", repository, hook["uuid"])
    assert "delivered" in table.stdout and "204" in table.stdout

    nothing_left = repolink("hook", "deliver")
    assert "delivered 0, failed 0" in nothing_left.stdout
    assert len(received) == 1


def error_code(result: Result) -> str:
    assert result.exit_code != 0
    assert isinstance(result.exception, RepolinkError), result.output
    return result.exception.code
