"""Faults with real processes (issue 13 §4): API processes (``repolink serve --no-workers``) and
workers (``repolink worker``), each on a data directory of its own, sharing one PostgreSQL
database; the repositories are the embedded host's (``hosted``), pushed to by git.

- 100 signed webhooks for one repository, sent at once over both API processes → at most two
  fetches run, and the pushed commit is indexed;
- 20 repositories pushed to at once → every new commit of every project indexed exactly once;
- a worker killed with SIGKILL mid-fetch → another finishes the fetch; the killed worker's
  half-written mirror passes ``git fsck`` after its next fetch; no commit lost or duplicated;
- an API process killed mid-request → the other keeps answering and queueing;
- the database restarted under load (a private PostgreSQL server, never the shared one) →
  the API answers 503 in the error shape while it is down, never 500; the workers reconnect and
  every queued fetch is carried out.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from repolink.git.mirrors import MIRRORS_DIR
from repolink.jobs.procrastinate_backend import conninfo
from repolink.settings import Settings
from repolink.store import Store
from support.clusterkit import (
    Cluster,
    PrivatePostgres,
    push_hook_path,
    signed_push_hook,
    stop,
    until,
)
from support.platformkit import WORKSPACE, HostedRepos, Platform

pytestmark = pytest.mark.slow

_DELIVERIES = itertools.count(1)


def _new_commit(hosted: HostedRepos, name: str) -> str:
    return hosted.app.commit(name)


def _send_hooks(cluster: Cluster, project: str, url: str, count: int) -> list[int]:
    """``count`` signed push webhooks for ``project`` at once, spread over every API process;
    their statuses."""
    secret = cluster.platform.app.webhooks_in.secret(project).value
    clients = [httpx.Client(base_url=api.url, trust_env=False, timeout=60) for api in cluster.apis]

    def send(number: int) -> int:
        body, headers = signed_push_hook(secret, url, f"delivery-{next(_DELIVERIES)}")
        client = clients[number % len(clients)]
        return client.post(push_hook_path(project), content=body, headers=headers).status_code

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(send, range(count)))
    finally:
        for client in clients:
            client.close()


def _indexed(cluster: Cluster, project: str) -> list[tuple[str, int]]:
    """Every indexed commit of ``project``'s connection: (sha, seq), as the table holds them."""
    connection_id = cluster.platform.app.connections.connection_info(project).id
    with psycopg.connect(conninfo(cluster.database_url), autocommit=True) as db:
        rows = db.execute(
            "SELECT sha, seq FROM commits WHERE connection_id = %s", (connection_id,)
        ).fetchall()
    return [(str(sha), int(seq)) for sha, seq in rows]


def _assert_indexed_once(cluster: Cluster, project: str, expected: set[str]) -> None:
    rows = _indexed(cluster, project)
    shas = [sha for sha, _ in rows]
    assert set(shas) == expected, project
    assert len(shas) == len(set(shas)) == len({seq for _, seq in rows}), project


def _finished(cluster: Cluster, project: str) -> list[Any]:
    runs = cluster.platform.app.fetch_requests.history(project, limit=200)
    return runs if runs and all(run.finished for run in runs) else []


@pytest.fixture
def cluster(pg_platform: Platform, tmp_path: Path) -> Any:
    with Cluster.on(pg_platform, tmp_path / "cluster") as running:
        yield running


def test_a_hundred_webhooks_over_two_api_processes_run_at_most_two_fetches(
    cluster: Cluster, hosted: HostedRepos
) -> None:
    url = hosted.app.url()
    assert cluster.platform.connect("burst", url, grant_on="app").ok
    before = {run.id for run in cluster.platform.app.fetch_requests.history("burst")}
    for name in ("api-1", "api-2"):
        cluster.start_api(name)
    for name in ("worker-1", "worker-2", "worker-3"):
        cluster.start_worker(name)
    pushed = _new_commit(hosted, "burst")

    statuses = _send_hooks(cluster, "burst", url, 100)

    assert set(statuses) <= {200, 202}, statuses
    runs = until(lambda: _finished(cluster, "burst"), "the burst's fetches finished")
    burst = [run for run in runs if run.id not in before]
    assert 1 <= len(burst) <= 2, (burst, cluster.logs())
    assert {run.trigger for run in burst} == {"webhook"}
    assert all(run.state == "done" for run in burst), cluster.logs()
    _assert_indexed_once(cluster, "burst", set(hosted.app.host_commits("main")))
    assert pushed in set(hosted.app.host_commits("main"))


def test_twenty_repositories_pushed_at_once_are_each_indexed_exactly_once(
    cluster: Cluster, hosted: HostedRepos
) -> None:
    service, source = hosted.host.service, hosted.app
    slugs = [f"many-{number:02d}" for number in range(20)]
    for slug in slugs:
        service.create_repository(WORKSPACE, slug)
        source.git("push", "-q", source.client.url(f"{WORKSPACE}/{slug}.git"), "main:main")
        assert cluster.platform.connect(
            slug, hosted.app.url().replace("/app.git", f"/{slug}.git"), grant_on=slug
        ).ok
    for name in ("api-1", "api-2"):
        cluster.start_api(name)
    for name in ("worker-1", "worker-2", "worker-3"):
        cluster.start_worker(name)
    # One new commit for each repository, on the same parent, pushed all at once.
    base = source.git("rev-parse", "HEAD")
    tips: dict[str, str] = {}
    for slug in slugs:
        tree = source.git("rev-parse", "HEAD^{tree}")
        tips[slug] = source.git("commit-tree", tree, "-p", base, "-m", f"new in {slug}")

    def push(slug: str) -> None:
        url = source.client.url(f"{WORKSPACE}/{slug}.git")
        source.git("push", "-q", url, f"{tips[slug]}:refs/heads/main")

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(push, slugs))
    # Each repository's forge tells its project, over both API processes.
    for number, slug in enumerate(slugs):
        url = hosted.app.url().replace("/app.git", f"/{slug}.git")
        statuses = _send_hooks(cluster, slug, url, 1 + number % 2)
        assert set(statuses) <= {200, 202}, (statuses, cluster.logs())

    commits = cluster.platform.app.commits
    for slug in slugs:
        until(
            lambda slug=slug: commits.list_commits(slug).commits[0].sha == tips[slug],  # type: ignore[misc]
            f"{slug}'s new commit listed",
        )
    expected_old = set(hosted.app.host_commits(base))
    for slug in slugs:
        _assert_indexed_once(cluster, slug, expected_old | {tips[slug]})


def _slow_connection(cluster: Cluster, hosted: HostedRepos, proxy: Any, slug: str) -> str:
    cluster.platform.trust_host(proxy.port)
    assert cluster.platform.connect(slug, hosted.app.url(proxy.port), grant_on="app").ok
    return hosted.app.commit_file("big.bin", 3 << 20, "a large file")


def _mirror_of(worker_dir: Path) -> Path:
    [mirror] = list((worker_dir / MIRRORS_DIR).glob("*.git"))
    return mirror


def test_a_worker_killed_mid_fetch_leaves_it_to_another_and_its_mirror_sound(
    cluster: Cluster, hosted: HostedRepos, proxy: Any
) -> None:
    big = _slow_connection(cluster, hosted, proxy, "doomed")
    requests = cluster.platform.app.fetch_requests
    api = cluster.start_api("api-1")
    doomed = cluster.start_worker("worker-1")
    proxy.throttle = 0.02  # about 200 KB/s: the fetch takes many seconds
    with cluster.client(api) as client:
        run = client.post("/api/v1/projects/doomed/fetch")
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    relayed = proxy.relayed
    until(lambda: proxy.relayed > relayed + 256 * 1024, "the pack on its way")
    assert requests.get_run(run_id).state == "running"

    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait()
    proxy.throttle = None
    rescuer = cluster.start_worker("worker-2")

    done = until(
        lambda: requests.get_run(run_id) if requests.get_run(run_id).finished else None,
        "the killed worker's fetch finished by another",
        timeout=180,
    )
    assert (done.state, done.new_commits) == ("done", 1), cluster.logs()
    expected = set(hosted.app.host_commits("--all"))
    _assert_indexed_once(cluster, "doomed", expected)
    assert _mirror_of(rescuer.data_dir).exists()

    # The killed worker comes back alone; its half-written mirror is next used by its fetch.
    assert stop(rescuer.process) == 0
    back = cluster.start_worker("worker-1")
    newer = hosted.app.commit("after the kill")
    with cluster.client(api) as client:
        again = client.post("/api/v1/projects/doomed/fetch")
    assert again.status_code == 202, again.text
    finished = until(
        lambda: requests.get_run(again.json()["id"]).finished, "the next fetch of worker-1"
    )
    assert finished
    assert requests.get_run(again.json()["id"]).state == "done", cluster.logs()
    assert stop(back.process) == 0
    mirror = _mirror_of(back.data_dir)
    checked = subprocess.run(
        ["git", f"--git-dir={mirror}", "fsck", "--full", "--no-dangling"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert list(mirror.rglob("*.lock")) == []
    listed = subprocess.run(
        ["git", f"--git-dir={mirror}", "rev-list", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {big, newer} <= set(listed)
    _assert_indexed_once(cluster, "doomed", set(hosted.app.host_commits("--all")))


def test_an_api_process_killed_mid_request_leaves_the_other_answering(
    cluster: Cluster, hosted: HostedRepos
) -> None:
    assert cluster.platform.connect("steady", hosted.app.url(), grant_on="app").ok
    requests = cluster.platform.app.fetch_requests
    before = {run.id for run in requests.history("steady")}
    doomed, survivor = cluster.start_api("api-1"), cluster.start_api("api-2")
    pushed = _new_commit(hosted, "steady")

    # No worker runs yet: the request waits for its fetch when its process is killed.
    def waiting_request() -> BaseException | int:
        try:
            with cluster.client(doomed) as client:
                return client.post(
                    "/api/v1/projects/steady/fetch", params={"wait": "true"}
                ).status_code
        except httpx.HTTPError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=1) as pool:
        cut = pool.submit(waiting_request)
        queued = until(
            lambda: [run for run in requests.history("steady") if run.id not in before],
            "the request's fetch queued",
        )
        cluster.kill_api(doomed)
        assert isinstance(cut.result(timeout=60), httpx.HTTPError)

    with cluster.client(survivor) as client:
        assert client.get("/api/v1/projects").status_code == 200
        assert client.get("/readyz").status_code == 200
    assert set(_send_hooks(cluster, "steady", hosted.app.url(), 5)) <= {200, 202}
    cluster.start_worker("worker-1")
    runs = until(lambda: _finished(cluster, "steady"), "the fetches finished")
    assert queued[0].id in {run.id for run in runs}
    assert all(run.state == "done" for run in runs if run.id not in before), cluster.logs()
    assert cluster.platform.app.commits.list_commits("steady").commits[0].sha == pushed


@pytest.fixture
def private_platform(tmp_path: Path, hosted: HostedRepos) -> Iterator[Platform]:
    """A platform on a database of a PostgreSQL server of this test's own."""
    reason = PrivatePostgres.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    try:
        server = PrivatePostgres()
        server.start()
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"a private PostgreSQL server cannot be started here: {exc}")
    try:
        with psycopg.connect(server.admin_url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE repolink")
        settings = Settings(
            data_dir=tmp_path / "platform",
            database_url=server.url("repolink"),
            git_timeout=120,
            ssh_connect_timeout=10,
        )
        with Store.open(settings) as store:
            kit = Platform(settings, store, hosted.host)
            kit.trust_host()
            kit.server = server  # type: ignore[attr-defined]
            try:
                yield kit
            finally:
                kit.app.close()
    finally:
        server.close()


def test_the_database_restarted_under_load_answers_503_and_loses_no_job(
    private_platform: Platform, hosted: HostedRepos, tmp_path: Path
) -> None:
    server: PrivatePostgres = private_platform.server  # type: ignore[attr-defined]
    slugs = ["down-0", "down-1", "down-2"]
    for slug in slugs:
        assert private_platform.connect(slug, hosted.app.url(), grant_on="app").ok
    # The webhooks' fetches wait a while before they run: they are queued across the outage.
    settings = {"REPOLINK_WEBHOOK_GATHER": "3"}
    with Cluster.on(private_platform, tmp_path / "cluster", settings) as cluster:
        api = cluster.start_api("api-1")
        workers = [cluster.start_worker(name) for name in ("worker-1", "worker-2")]
        cluster.workers_running(2)  # the outage meets them at work, not starting up
        pushed = _new_commit(hosted, "outage")
        statuses: list[int] = []
        answers: list[str] = []
        stopping = threading.Event()

        def load() -> None:
            with cluster.client(api) as client:
                while not stopping.is_set():
                    for path in ("/api/v1/projects", f"/api/v1/projects/{slugs[0]}/commits"):
                        answer = client.get(path)
                        statuses.append(answer.status_code)
                        if answer.status_code != 200:
                            answers.append(answer.text)

        with ThreadPoolExecutor(max_workers=1) as pool:
            loading = pool.submit(load)
            for slug in slugs:
                assert set(_send_hooks(cluster, slug, hosted.app.url(), 2)) <= {200, 202}
            server.stop("fast")
            try:
                with cluster.client(api) as client:
                    down = until(
                        lambda: (r := client.get("/api/v1/projects")).status_code == 503 and r,
                        "a 503 while the database is down",
                    )
                    ready = client.get("/readyz")
                    body, headers = signed_push_hook("x", hosted.app.url(), "during-outage")
                    hook = client.post(push_hook_path(slugs[0]), content=body, headers=headers)
            finally:
                server.start()
            with cluster.client(api) as client:
                until(
                    lambda: client.get("/api/v1/projects").status_code == 200,
                    "the API answering again",
                )
            stopping.set()
            loading.result(timeout=60)

        for answer in (down, ready, hook):
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert error["code"] == "store_unavailable" and error["message"] and error["hint"]
        assert 503 in statuses and set(statuses) <= {200, 503}, (set(statuses), answers[:3])
        # The workers reconnected by themselves; every queued fetch was carried out.
        for slug in slugs:
            until(
                lambda slug=slug: (
                    _finished(cluster, slug)  # type: ignore[misc]
                    and private_platform.app.commits.list_commits(slug).commits[0].sha == pushed
                ),
                f"{slug}'s fetch after the outage",
            )
            runs = private_platform.app.fetch_requests.history(slug)
            assert all(run.state == "done" for run in runs), (runs, cluster.logs())
        assert all(worker.process.poll() is None for worker in workers), cluster.logs()
