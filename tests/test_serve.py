"""``repolink serve`` as a real process (issue 11 §1): what it prints, what it serves, and how
SIGTERM and SIGINT stop it — exit 0, every port closed."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from repolink.app import Repolink
from repolink.cli.serve import first_start_password
from repolink.settings import Settings
from support.accountskit import FAST_HASHER, PASSWORD
from support.servekit import SERVE, SERVICE, service_environment, serving_service

WAIT = 60.0


def refuses_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_serve_serves_every_api_and_stops_on_sigterm(tmp_path: Path) -> None:
    with serving_service(tmp_path / "data", {"REPOLINK_ADMIN_TOKEN": "serve-token"}) as service:
        printed = "\n".join(service.printed)
        # Where everything is: the real ports bound, and the host keys by their SHA256.
        assert f"(clone: {service.ssh_url_base}/WS/SLUG.git)" in printed
        assert "  host key ssh-ed25519 SHA256:" in printed
        assert f"  docs     {service.url}/api/docs" in printed
        assert f"  OpenAPI  {service.url}/api/v1/openapi.json" in printed
        with httpx.Client(base_url=service.url, trust_env=False, timeout=WAIT) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/readyz").json() == {"status": "ready"}
            assert client.get("/api/docs").status_code == 200
            assert "/readyz" in client.get("/api/v1/openapi.json").json()["paths"]
            hosted = client.post(
                "/host/api/2.0/repositories/team/app",
                json={},
                headers={"Authorization": "Bearer serve-token"},
            )
            assert hosted.status_code in (200, 201), hosted.text
            clone = {link["name"]: link["href"] for link in hosted.json()["links"]["clone"]}
            # The host API names the SSH port really bound.
            assert clone["ssh"] == f"{service.ssh_url_base}/team/app.git"
        with socket.create_connection(("127.0.0.1", service.ssh_port or 0), WAIT) as ssh:
            assert ssh.recv(8).startswith(b"SSH-2.0")

        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(WAIT) == 0
        stdout, stderr = service.process.communicate()
        assert "stopping" in stdout and stdout.rstrip().endswith("stopped")
        assert "Traceback" not in stderr
        assert refuses_connections(service.http_port)
        assert refuses_connections(service.ssh_port or 0)


def test_serve_without_ssh_stops_on_sigint(tmp_path: Path) -> None:
    with serving_service(tmp_path / "data", args=["--workers", "0"], ssh=False) as service:
        assert not any(line.startswith("SSH server") for line in service.printed)
        assert "workers: none" in service.printed[-1]
        with httpx.Client(base_url=service.url, trust_env=False, timeout=WAIT) as client:
            assert client.get("/readyz").status_code == 200
        service.process.send_signal(signal.SIGINT)
        assert service.process.wait(WAIT) == 0
        assert refuses_connections(service.http_port)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--listen", "8080"], "--listen must be HOST:PORT"),
        (["--ssh-listen", "nowhere"], "--ssh-listen must be HOST:PORT"),
        (["--workers", "-1"], "--workers"),
    ],
)
def test_bad_options_exit_2_naming_the_option(tmp_path: Path, args: list[str], named: str) -> None:
    done = subprocess.run(
        [*SERVICE, *args],
        env=service_environment(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert "Traceback" not in done.stderr


def test_a_host_storage_that_cannot_be_used_stops_the_start_with_exit_2(tmp_path: Path) -> None:
    """Refused before anything listens, with or without an SSH host (the host API of every
    process creates repositories there), and before the first start makes the site admin."""
    (tmp_path / "a-file").write_text("not a directory\n")
    for command, storage, code in (
        (
            [*SERVICE, "--listen", "127.0.0.1:0", "--ssh-listen", "off", "--no-workers"],
            tmp_path / "unmounted",
            "host_storage_missing",
        ),
        (
            [*SERVE, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
            tmp_path / "a-file",
            "host_storage_not_a_directory",
        ),
    ):
        done = subprocess.run(
            command,
            env=service_environment(tmp_path / "data", {"REPOLINK_HOST_STORAGE": str(storage)}),
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert done.returncode == 2, done.stderr
        [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert line.startswith(f"error: {code}: the host storage {storage} "), line
        assert "REPOLINK_HOST_STORAGE" in line
        assert "Traceback" not in done.stderr
        assert "created user admin" not in done.stderr
        assert "HTTP API on" not in done.stdout and "SSH server on" not in done.stdout
    assert not (tmp_path / "unmounted").exists()


def test_the_first_start_creates_the_site_admin_and_prints_its_password_once(
    tmp_path: Path,
) -> None:
    with serving_service(tmp_path / "data", args=["--workers", "0"], ssh=False) as service:
        assert service.process.stdout is not None
        line = service.process.stdout.readline()
        assert line.startswith("site admin 'admin' created; one-time password: "), line
        password = line.split(": ", 1)[1].strip()
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(WAIT) == 0
        _, stderr = service.process.communicate()
        assert password not in stderr
    with serving_service(tmp_path / "data", args=["--workers", "0"], ssh=False) as again:
        again.process.send_signal(signal.SIGTERM)
        stdout, _ = again.process.communicate(timeout=WAIT)
        assert "one-time password" not in "\n".join(again.printed) + stdout
    settings = Settings(data_dir=tmp_path / "data")
    with Repolink(settings, password_hasher=FAST_HASHER) as application:
        (admin,) = application.users.list_users()
        assert (admin.username, admin.site_admin) == ("admin", True)
        assert application.users.check_password("admin", password) is not None


def test_the_first_start_takes_the_configured_admin_password(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_password=SecretStr(PASSWORD))
    with Repolink(settings, password_hasher=FAST_HASHER) as application:
        assert first_start_password(application) is None
        assert application.users.check_password("admin", PASSWORD) is not None
        assert first_start_password(application) is None
    # A secret goes only where it is used: no child process is given it.
    assert "REPOLINK_ADMIN_PASSWORD" not in settings.to_env()
