"""``repolink worker`` and ``repolink serve --no-workers`` as real processes on one PostgreSQL
database (issue 13 §3): the API process only queues a fetch — it runs no procrastinate worker
— and a worker process carries it out, then stops on SIGTERM with exit 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from repolink.auth.principal import LOCAL_ADMIN
from support.platformkit import HostedRepos, Platform
from support.procrastinatekit import job_table
from support.servekit import service_environment, serving_service

WAIT = 90.0
WORKER = [sys.executable, "-m", "repolink", "worker"]


def _workers_registered(database_url: str) -> int:
    with job_table(database_url) as connection:
        row = connection.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
        return int(row[0]) if row else 0


def test_serve_without_workers_queues_and_a_worker_process_fetches(
    pg_platform: Platform, hosted: HostedRepos
) -> None:
    assert pg_platform.connect("alpha", hosted.app.url(), grant_on="app").ok
    (hosted.app.source / "worker.txt").write_text("a commit for the worker\n")
    hosted.app.git("add", "worker.txt")
    hosted.app.git("commit", "-q", "-m", "for the worker")
    hosted.app.push("main:main")
    app = pg_platform.app
    app.users.create(LOCAL_ADMIN, "ops", site_admin=True)
    _, token = app.api_tokens.create(LOCAL_ADMIN, "ops", "worker test")
    url = pg_platform.settings.resolved_database_url
    data_dir = pg_platform.settings.data_dir
    settings = {"REPOLINK_DATABASE_URL": url}

    with serving_service(data_dir, settings, args=["--no-workers"], ssh=False) as service:
        assert "--no-workers" in service.printed[-1]
        with httpx.Client(base_url=service.url, trust_env=False, timeout=WAIT) as client:
            answer = client.post(
                "/api/v1/projects/alpha/fetch", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["id"]
        # Queued for the workers; the API process holds none.
        assert _workers_registered(url) == 0
        assert app.fetch_requests.get_run(run_id).state == "queued"

        worker = subprocess.Popen(
            [*WORKER, "--concurrency", "2"],
            env=service_environment(data_dir, settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + WAIT
            while not app.fetch_requests.get_run(run_id).finished:
                assert worker.poll() is None, worker.communicate()
                assert time.monotonic() < deadline, "the worker never fetched"
                time.sleep(0.1)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(WAIT) == 0
            stdout, stderr = worker.communicate()
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(WAIT) == 0

    run = app.fetch_requests.get_run(run_id)
    assert (run.state, run.new_commits, run.trigger) == ("done", 1, "api")
    assert "worker: 2 jobs at once (procrastinate on PostgreSQL)" in stdout
    assert stdout.rstrip().endswith("stopped")
    assert "Traceback" not in stderr
    assert _workers_registered(url) == 0  # it unregistered when it stopped


def test_worker_refuses_a_concurrency_below_one(tmp_path: Path) -> None:
    done = subprocess.run(
        [*WORKER, "--concurrency", "0"],
        env=service_environment(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 2
    assert "--concurrency" in done.stderr
