"""Workspace and repository names, and the repository paths clients send."""

from __future__ import annotations

import pytest

from repolink.errors import ValidationError
from repolink.host.naming import (
    RepositoryName,
    parse_full_name,
    parse_repository_path,
    validate_slug,
    validate_workspace,
)


@pytest.mark.parametrize(
    "name", ["a", "team", "my-team", "my_team", "v1.2", "0day", "_x", "a" * 62]
)
def test_valid_names(name: str) -> None:
    assert validate_workspace(name) == name
    assert validate_slug(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".hidden", "-opt", "Team", "a b", "a/b", "a..b", "app.git", "a" * 63, "é", "a\n", "a;b"],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValidationError) as workspace_error:
        validate_workspace(name)
    assert workspace_error.value.code == "workspace_invalid"
    with pytest.raises(ValidationError) as slug_error:
        validate_slug(name)
    assert slug_error.value.code == "slug_invalid"


@pytest.mark.parametrize("path", ["team/app", "team/app.git", "/team/app", "/team/app.git"])
def test_repository_path_spellings(path: str) -> None:
    assert parse_repository_path(path) == RepositoryName("team", "app")


@pytest.mark.parametrize(
    "path", ["team", "team/app/x", "//team/app", "team//app", "../app", "team/", "/team/app.git/"]
)
def test_repository_paths_refused(path: str) -> None:
    assert parse_repository_path(path) is None


def test_full_name_for_admins() -> None:
    assert parse_full_name("team/app").full_name == "team/app"
    with pytest.raises(ValidationError) as caught:
        parse_full_name("team")
    assert caught.value.code == "repository_name_invalid"
