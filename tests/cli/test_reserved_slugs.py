"""No project slug may be a subcommand name of a command group that takes a project: a
project called "list" broke ``repolink commits list`` (issue 10 §1.15)."""

from __future__ import annotations

import pytest

from repolink.platform.projects import RESERVED_SLUGS
from support.clikit import CLI, command_tree


@pytest.fixture
def cli(fresh_cli: CLI) -> CLI:
    return fresh_cli


def subcommands_beside_a_project_argument() -> set[str]:
    """The names a user types where a project could also stand: every subcommand of a group
    of which some command takes a PROJECT argument."""
    tree = dict(command_tree())
    takes_project = {
        path[:-1]
        for path, command in tree.items()
        if any(param.name == "project" for param in command.params)
    }
    return {path[-1] for path in tree if path[:-1] in takes_project and path[:-1]}


def test_every_subcommand_beside_a_project_is_reserved() -> None:
    names = subcommands_beside_a_project_argument()
    assert {"list", "hide", "unhide", "show", "create", "connect"} <= names
    assert names - RESERVED_SLUGS == set(), "add the new subcommand to RESERVED_SLUGS"


@pytest.mark.parametrize(
    "args",
    [("list",), ("List",), ("  hide! ",), ("My project", "--slug", "show")],
)
def test_a_project_named_like_a_subcommand_is_refused(cli: CLI, args: tuple[str, ...]) -> None:
    refused = cli("project", "create", *args)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: project_slug_reserved: "), refused.stderr
    assert refused.stderr.rstrip().endswith("— choose another name or give another --slug")
    assert cli.json("project", "list") == []


def test_a_reserved_name_with_its_own_slug_and_a_name_without_letters(cli: CLI) -> None:
    assert cli("project", "create", "list", "--slug", "shopping-list").returncode == 0
    assert cli("project", "create", "!!!").returncode == 0
    listed = cli.json("project", "list")
    assert [(p["slug"], p["name"]) for p in listed] == [
        ("shopping-list", "list"),
        ("untitled", "!!!"),
    ]
