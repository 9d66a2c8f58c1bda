"""repolink.cli.quick: a no-op `repolink fetch P` answered before the command tree is built,
with the tree's words and JSON, and everything else left to the tree (issue 10 §2). Real
`repolink` processes against the embedded host, with real git and ssh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repolink.cli.quick import _fetch_arguments
from support.platformkit import HostedRepos, Platform, granted_key


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["fetch", "web"], ("web", False)),
        (["fetch", "web", "--json"], ("web", True)),
        (["fetch", "--json", "web"], ("web", True)),
        (["fetch"], (None, False)),
        (["fetch", "--help"], (None, False)),
        (["fetch", "-h", "web"], (None, False)),
        (["fetch", "web", "api"], (None, False)),
        (["fetch", "web", "--json", "--json"], (None, False)),
        (["fetch", "--", "web"], (None, False)),
        (["commits", "web"], (None, False)),
        ([], (None, False)),
    ],
)
def test_only_fetch_of_one_project_is_answered_here(
    args: list[str], expected: tuple[str | None, bool]
) -> None:
    assert _fetch_arguments(args) == expected


# Runs `repolink ARGS` through the real entry point, or with `tree` first in argv through the
# command tree alone, and reports the exit status and the modules it loaded.
PROBE = """
import json, sys
from repolink import cli
args = sys.argv[1:]
try:
    if args[0] == "tree":
        from repolink.cli import root
        root.run(args[1:])
    else:
        cli.main(args)
except SystemExit as exc:
    code = exc.code
print(json.dumps([code, sorted(sys.modules)]))
"""


def _repolink(platform: Platform, home: Path, tmp: Path, *args: str) -> tuple[int, str, set[str]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REPOLINK_")}
    environment.update(
        REPOLINK_DATA_DIR=str(platform.settings.resolved_data_dir),
        HOME=str(home),
        TMPDIR=str(tmp),
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=environment,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    *output, last = done.stdout.splitlines()
    code, modules = json.loads(last)
    return code, "".join(f"{line}\n" for line in output), set(modules)


def _without_times(document: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(document)
    assert data.pop("attempted_at") and "duration" in data
    del data["duration"]
    return data


def test_a_no_op_fetch_is_answered_without_the_command_tree_in_the_trees_words(
    platform: Platform, hosted: HostedRepos, private_tmp: Path, tmp_path: Path
) -> None:
    platform.connect("quiet", hosted.other.url(), granted_key(hosted.host, "other", "quiet"))
    home = tmp_path / "home"
    home.mkdir()

    code, text, loaded = _repolink(platform, home, private_tmp, "fetch", "quiet")
    tree_code, tree_text, _ = _repolink(platform, home, private_tmp, "tree", "fetch", "quiet")

    assert (code, tree_code) == (0, 0)
    assert text == tree_text == "up to date: the remote's refs equal the mirror's\n0 new commits\n"
    not_loaded = {
        "typer",
        "rich",
        "click",
        "repolink.cli.root",
        "repolink.platform.fetch",
        "repolink.keys.generate",
        "repolink.keys.model",
        "sqlalchemy",
        "pydantic",
    }
    assert not loaded & not_loaded

    code, document, loaded = _repolink(platform, home, private_tmp, "fetch", "quiet", "--json")
    _, tree_document, _ = _repolink(platform, home, private_tmp, "tree", "fetch", "--json", "quiet")
    assert code == 0 and "repolink.cli.root" not in loaded
    assert _without_times(document) == _without_times(tree_document)
    assert json.loads(document)["skipped"] is True


def test_what_the_quick_path_cannot_answer_runs_through_the_tree(
    platform: Platform, hosted: HostedRepos, private_tmp: Path, tmp_path: Path
) -> None:
    platform.connect("moving", hosted.other.url(), granted_key(hosted.host, "other", "moving"))
    home = tmp_path / "home"
    home.mkdir()
    hosted.other.commit("one more")
    hosted.other.push("main")

    code, text, loaded = _repolink(platform, home, private_tmp, "fetch", "moving")
    assert (code, text.splitlines()[-1]) == (0, "1 new commit")
    assert "repolink.cli.root" in loaded  # the tree ran the fetch, from the start

    code, text, _ = _repolink(platform, home, private_tmp, "fetch", "no-such-project")
    assert code == 2 and text == ""  # reported by the tree, on stderr, as ever


def test_ctrl_c_during_the_quick_path_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from repolink.cli import quick
    from repolink.settings import Settings

    def interrupted() -> Settings:
        raise KeyboardInterrupt

    monkeypatch.setattr("repolink.settings.load_settings", interrupted)
    assert quick.answer(["fetch", "web"]) == 130
