"""The data directory is the user's, not the working directory's; ``repolink info`` and
not-found errors in an empty store say which one was read (issue 10 §1.3), and ``info`` and
``--version`` the host storage in use."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from support.clikit import REPOLINK


def _repolink(
    *args: str, cwd: Path, xdg: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")}
    environment["XDG_DATA_HOME"] = str(xdg)
    environment.update(env or {})
    return subprocess.run(
        [*REPOLINK, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def test_two_working_directories_see_the_same_project(tmp_path: Path) -> None:
    xdg, first, second = tmp_path / "xdg", tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    created = _repolink("project", "create", "Image classifier", cwd=first, xdg=xdg)
    assert created.returncode == 0, created.stderr
    listed = _repolink("project", "list", "--json", cwd=second, xdg=xdg)
    assert listed.returncode == 0, listed.stderr
    assert [project["slug"] for project in json.loads(listed.stdout)] == ["image-classifier"]
    assert not (first / ".repolink").exists() and not (second / ".repolink").exists()
    version = _repolink("--version", cwd=second, xdg=xdg)
    assert f"data directory: {xdg / 'repolink'}" in version.stdout


def test_info_shows_the_data_directory_database_and_counts(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    assert _repolink("project", "create", "api", cwd=tmp_path, xdg=xdg).returncode == 0
    assert _repolink("host", "repo", "create", "team/app", cwd=tmp_path, xdg=xdg).returncode == 0
    shown = _repolink("info", "--json", cwd=tmp_path, xdg=xdg)
    assert shown.returncode == 0, shown.stderr
    facts = json.loads(shown.stdout)
    data_dir = xdg / "repolink"
    assert facts["data_dir"] == str(data_dir)
    assert facts["database"] == f"sqlite:///{data_dir / 'repolink.db'}"
    assert (facts["projects"], facts["workspaces"], facts["repositories"]) == (1, 1, 1)
    assert facts["host_storage"] == str(data_dir / "host" / "repositories")
    text = _repolink("info", cwd=tmp_path, xdg=xdg).stdout
    assert f"data directory: {data_dir}\n" in text
    assert f"host storage: {data_dir / 'host' / 'repositories'}\n" in text
    assert "projects: 1\n" in text


def test_info_and_version_show_the_host_storage_set(tmp_path: Path) -> None:
    xdg, storage = tmp_path / "xdg", tmp_path / "shared"
    storage.mkdir()
    env = {"REPOLINK_HOST_STORAGE": str(storage)}
    made = _repolink("host", "repo", "create", "team/app", cwd=tmp_path, xdg=xdg, env=env)
    assert made.returncode == 0, made.stderr
    assert len(list(storage.glob("*.git"))) == 1
    shown = _repolink("info", "--json", cwd=tmp_path, xdg=xdg, env=env)
    assert json.loads(shown.stdout)["host_storage"] == str(storage)
    version = _repolink("--version", cwd=tmp_path, xdg=xdg, env=env)
    assert f"host storage: {storage}\n" in version.stdout


def test_a_not_found_error_in_an_empty_store_names_the_directory_read(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    missing = _repolink("fetch", "image-classifier", cwd=tmp_path, xdg=xdg)
    assert missing.returncode == 2
    assert "project_not_found" in missing.stderr
    assert f"(the data directory {xdg / 'repolink'} holds no projects or repositories yet)" in (
        missing.stderr
    )
    workspace = _repolink("host", "repo", "list", "team", cwd=tmp_path, xdg=xdg)
    assert f"data directory {xdg / 'repolink'} holds no" in workspace.stderr
    # Once something exists, a not-found error is about that name only.
    assert _repolink("project", "create", "api", cwd=tmp_path, xdg=xdg).returncode == 0
    again = _repolink("fetch", "image-classifier", cwd=tmp_path, xdg=xdg)
    assert "project_not_found" in again.stderr
    assert "holds no projects" not in again.stderr
