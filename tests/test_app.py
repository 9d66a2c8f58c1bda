"""The application object: one store, one vault, one runner, each service built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from repolink import vault as vault_module
from repolink.app import Repolink
from repolink.keys import generate_key
from repolink.settings import Settings
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
