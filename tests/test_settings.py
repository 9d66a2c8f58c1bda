from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from repolink.errors import ValidationError
from repolink.settings import Settings, load_settings


def test_defaults_put_everything_in_the_users_data_directory_wherever_it_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 10 §1.3: the data directory no longer follows the working directory."""
    for name in ("REPOLINK_DATA_DIR", "REPOLINK_DATABASE_URL", "REPOLINK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "repolink"
    for cwd in (tmp_path, tmp_path.parent):
        monkeypatch.chdir(cwd)
        settings = Settings()
        assert settings.resolved_data_dir == expected
    assert settings.resolved_database_url == f"sqlite:///{expected / 'repolink.db'}"
    assert settings.resolved_secret_key_file == expected / "secret.key"


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("REPOLINK_DATA_DIR", "")
    monkeypatch.setenv("REPOLINK_DATABASE_URL", "")
    settings = load_settings()
    assert settings.resolved_data_dir == tmp_path / "xdg" / "repolink"
    assert settings.database_url is None


def test_environment_prefix_is_repolink(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPOLINK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REPOLINK_DATABASE_URL", "postgresql+psycopg://db/repolink")
    monkeypatch.setenv("REPOLINK_SECRET_KEY", "c2VjcmV0")
    settings = Settings()
    assert settings.resolved_data_dir == tmp_path / "data"
    assert settings.resolved_database_url == "postgresql+psycopg://db/repolink"
    assert settings.secret_key is not None
    assert "c2VjcmV0" not in repr(settings)


def test_a_setting_that_does_not_fit_names_its_variable_and_not_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPOLINK_GIT_TIMEOUT", "soon-ish")
    with pytest.raises(ValidationError) as raised:
        load_settings()
    assert raised.value.code == "settings_invalid"
    assert "REPOLINK_GIT_TIMEOUT" in raised.value.message
    assert "soon-ish" not in raised.value.message + raised.value.hint
    assert "unset it" in raised.value.hint


def test_the_scout_threshold_is_a_setting_and_zero_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().scout_min_objects == 50_000
    monkeypatch.setenv("REPOLINK_SCOUT_MIN_OBJECTS", "0")
    assert load_settings().scout_min_objects == 0
    monkeypatch.setenv("REPOLINK_SCOUT_MIN_OBJECTS", "-1")
    with pytest.raises(ValidationError, match="REPOLINK_SCOUT_MIN_OBJECTS"):
        load_settings()


def test_the_openssh_url_is_a_server_address_with_no_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().openssh_url is None
    monkeypatch.setenv("REPOLINK_OPENSSH_URL", "ssh://git@git.example.com:2222/")
    assert load_settings().openssh_url == "ssh://git@git.example.com:2222"
    for wrong in ("ssh://git@git.example.com/team", "git@git.example.com:team", "https://h"):
        monkeypatch.setenv("REPOLINK_OPENSSH_URL", wrong)
        with pytest.raises(ValidationError) as raised:
            load_settings()
        assert raised.value.code == "settings_invalid"
        assert "REPOLINK_OPENSSH_URL" in raised.value.message
        assert wrong not in raised.value.message + raised.value.hint


def test_to_env_rebuilds_the_same_settings_in_a_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'other.db'}",
        secret_key=SecretStr("c2VjcmV0"),
        git_timeout=42.5,
        scout_min_objects=0,
    )
    environment = original.to_env()
    assert environment["REPOLINK_DATA_DIR"] == str((tmp_path / "data").resolve())
    for name in list(os.environ):
        if name.startswith("REPOLINK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path.parent)  # a child may start anywhere
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    rebuilt = load_settings()
    assert rebuilt.resolved_data_dir == original.resolved_data_dir
    assert rebuilt.resolved_database_url == original.resolved_database_url
    assert rebuilt.secret_key is not None
    assert rebuilt.secret_key.get_secret_value() == "c2VjcmV0"
    assert (rebuilt.git_timeout, rebuilt.scout_min_objects) == (42.5, 0)
    assert rebuilt.resolved_secret_key_file == original.resolved_secret_key_file


def test_values_given_in_code_are_converted_and_checked_as_variables_are() -> None:
    settings = Settings(data_dir="relative/data", git_timeout=5, ssh_connect_timeout=7.0)
    assert settings.data_dir == Path("relative/data")
    assert (settings.git_timeout, type(settings.git_timeout)) == (5.0, float)
    assert (settings.ssh_connect_timeout, type(settings.ssh_connect_timeout)) == (7, int)
    for bad in ({"ssh_control_persist": 0}, {"git_timeout": "soon"}, {"ssh_max_sessions": True}):
        with pytest.raises(ValidationError) as refused:
            Settings(**bad)
        assert refused.value.code == "settings_invalid"
        assert f"REPOLINK_{next(iter(bad)).upper()}" in refused.value.message
    with pytest.raises(TypeError, match="git_timeot"):
        Settings(git_timeot=5)


def test_secrets_never_show_and_settings_change_only_by_copy(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_token="hunter2", secret_key=SecretStr("c2Vj"))
    assert settings.admin_token is not None and settings.secret_key is not None
    assert settings.admin_token.get_secret_value() == "hunter2"
    assert settings.secret_key.get_secret_value() == "c2Vj"
    assert "hunter2" not in repr(settings) + str(settings.admin_token)
    assert "c2Vj" not in repr(settings)
    with pytest.raises(AttributeError):
        settings.git_timeout = 1  # type: ignore[misc]
    changed = settings.model_copy(update={"git_timeout": 1})
    assert (changed.git_timeout, settings.git_timeout) == (1.0, 600.0)
    assert changed.model_copy(update={"git_timeout": 600}) == settings


def test_the_host_storage_is_the_data_directorys_unless_set_and_children_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REPOLINK_HOST_STORAGE", raising=False)
    own = Settings(data_dir=tmp_path / "data")
    assert own.resolved_host_storage == tmp_path / "data" / "host" / "repositories"
    assert "REPOLINK_HOST_STORAGE" not in own.to_env()  # a child derives it from its own

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPOLINK_HOST_STORAGE", "mnt/repositories")
    shared = load_settings()
    assert shared.resolved_host_storage == tmp_path / "mnt" / "repositories"
    assert shared.to_env()["REPOLINK_HOST_STORAGE"] == str(tmp_path / "mnt" / "repositories")
