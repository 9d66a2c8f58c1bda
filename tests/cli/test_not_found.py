"""Not-found errors through the real CLI name what was not found (issue 10 §1.4)."""

from __future__ import annotations

import pytest

from support.clikit import CLI

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture
def cli(fresh_cli: CLI) -> CLI:
    return fresh_cli


def test_a_project_given_by_its_name_is_answered_with_its_slug(cli: CLI) -> None:
    assert cli("project", "create", "Image classifier").returncode == 0
    fetched = cli("fetch", "Image classifier")
    assert fetched.returncode == 2
    assert "project_not_found: there is no project with the slug 'Image classifier'" in (
        fetched.stderr
    )
    assert "the project named 'Image classifier' has the slug image-classifier" in fetched.stderr
    unknown = cli("fetch", "nothing-here")
    assert "there is no project 'nothing-here'" in unknown.stderr


def test_key_material_given_as_a_project_is_not_echoed(cli: CLI) -> None:
    fetched = cli("fetch", PUBLIC_KEY)
    assert fetched.returncode == 2
    assert "project_not_found" in fetched.stderr
    assert "AAAAC3NzaC1lZDI1NTE5" not in fetched.stderr + fetched.stdout


def test_host_not_found_errors_name_the_workspace_and_key(cli: CLI) -> None:
    listed = cli("host", "repo", "list", "nobody")
    assert listed.returncode == 2
    assert "workspace_not_found: there is no workspace nobody" in listed.stderr
    assert "repolink host repo create nobody/SLUG" in listed.stderr
    assert cli("host", "repo", "create", "team/app").returncode == 0
    removed = cli("host", "access-key", "remove", "team/app", "7", "--yes")
    assert "the repository team/app has no access key 7" in removed.stderr
