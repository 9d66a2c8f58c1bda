"""The application object: one store, one vault, one runner, each service built once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from repolink import vault as vault_module
from repolink.app import Repolink
from repolink.keys import generate_key
from repolink.platform.connections import create_connection
from repolink.settings import Settings
from repolink.store.models.fetch_runs import FetchRun
from repolink.store.models.platform import KEY_GENERATED
from repolink.urls import parse_ssh_url
from support.recording import RecordingRunner


def test_nothing_is_opened_until_a_service_needs_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with Repolink(settings):
        pass
    assert not (tmp_path / "data").exists()  # no database, no master key file


def test_the_vault_is_loaded_once_whatever_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Path] = []
    real = vault_module.load_vault

    def counting(settings: Settings) -> vault_module.Vault:
        loads.append(settings.resolved_secret_key_file)
        return real(settings)

    monkeypatch.setattr(vault_module, "load_vault", counting)
    with Repolink(Settings(data_dir=tmp_path / "data")) as app:
        app.projects.create_project("One")
        app.connections.connect("one", "git@127.0.0.1:team/app.git", key=generate_key())
        app.additional_keys.add_key("one", generate_key())
        app.hooks  # noqa: B018  (built, sharing the same loader)
        assert app.hooks._vault is app.vault  # type: ignore[attr-defined]
    assert len(loads) == 1


def test_services_are_built_once_and_share_the_store_and_runner(tmp_path: Path) -> None:
    runner = RecordingRunner()
    with Repolink(Settings(data_dir=tmp_path / "data"), runner=runner) as app:
        assert app.fetches is app.fetches
        assert app.deploy_keys._fetches is app.fetches  # type: ignore[attr-defined]
        assert app.fetches._store is app.store is app.projects._store  # type: ignore[attr-defined]
        assert app.fetches._runner is runner  # type: ignore[attr-defined]


def test_a_store_given_to_the_application_is_not_closed_by_it(tmp_path: Path) -> None:
    from repolink.store import Store

    settings = Settings(data_dir=tmp_path / "data")
    with Store.open(settings) as store:
        with Repolink(settings, store=store) as app:
            app.projects.create_project("Kept")
        with store.session() as session:  # still usable after the application closed
            assert session.connection() is not None


def test_the_jobs_backend_is_chosen_from_the_database_url(
    tmp_path: Path, postgres_url: str
) -> None:
    with Repolink(Settings(data_dir=tmp_path / "sqlite")) as embedded:
        assert embedded.job_backend is None
        assert embedded.fetch_requests.queue.waker is None
        assert embedded.jobs_worker() is None
    with Repolink(Settings(data_dir=tmp_path / "pg", database_url=postgres_url)) as shared:
        assert shared.job_backend is not None
        assert shared.fetch_requests.queue.waker is shared.fetch_dispatch
        assert (shared.job_backend.stalled_after, shared.job_backend.heartbeat_interval) == (
            30.0,
            10.0,
        )
    quick = Settings(data_dir=tmp_path / "q", database_url=postgres_url, worker_stalled_after=6)
    with Repolink(quick) as app:
        assert app.job_backend is not None
        assert (app.job_backend.stalled_after, app.job_backend.heartbeat_interval) == (6.0, 2.0)


@pytest.mark.parametrize(("fetch_workers", "runs_fetches"), [(4, True), (0, False)])
def test_a_server_with_no_fetch_workers_runs_no_fetch_job_on_postgresql(
    tmp_path: Path, postgres_url: str, fetch_workers: int, runs_fetches: bool
) -> None:
    from repolink.jobs.procrastinate_backend import QUEUE
    from repolink.platform.fetch_dispatch import FETCH_QUEUE

    with Repolink(Settings(data_dir=tmp_path / "pg", database_url=postgres_url)) as app:
        app.background_work(ssh_url_base=None, fetch_workers=fetch_workers)
        worker = app.jobs_worker()
        assert worker is not None
        assert QUEUE in worker.queues  # deliveries, polling, dead workers' jobs
        assert (FETCH_QUEUE in worker.queues) is runs_fetches


def test_a_claimed_fetch_is_reserved_for_the_lease_the_settings_give(tmp_path: Path) -> None:
    """``REPOLINK_FETCH_LEASE``: how long a dead process's fetch waits before another takes
    it over — the claim reserves the run that long, no longer."""
    settings = Settings(data_dir=tmp_path / "data", fetch_lease=7)
    with Repolink(settings) as app:
        app.projects.create_project("Leased", slug="leased")
        with app.store.session() as session:
            create_connection(
                session,
                app.vault(),
                "leased",
                parse_ssh_url("ssh://git@127.0.0.1:1/team/app.git"),
                generate_key(),
                origin=KEY_GENERATED,
            )
        run = app.fetch_requests.request("leased", trigger="api")
        now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert app.fetch_requests.queue.claim_run(run.id, now=now) is not None
        with app.store.session() as session:
            claimed_until = session.scalar(
                select(FetchRun.claimed_until).where(FetchRun.id == run.id)
            )
    assert claimed_until == now + timedelta(seconds=7)
