from __future__ import annotations

from pathlib import Path

import pytest

from repolink.settings import Settings


def test_defaults_put_everything_under_dot_repolink(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("REPOLINK_DATA_DIR", "REPOLINK_DATABASE_URL", "REPOLINK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.resolved_data_dir == tmp_path / ".repolink"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / '.repolink' / 'repolink.db'}"
    assert settings.resolved_secret_key_file == tmp_path / ".repolink" / "secret.key"


def test_environment_prefix_is_repolink(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPOLINK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REPOLINK_DATABASE_URL", "postgresql+psycopg://db/repolink")
    monkeypatch.setenv("REPOLINK_SECRET_KEY", "c2VjcmV0")
    settings = Settings()
    assert settings.resolved_data_dir == tmp_path / "data"
    assert settings.resolved_database_url == "postgresql+psycopg://db/repolink"
    assert settings.secret_key is not None
    assert "c2VjcmV0" not in repr(settings)
