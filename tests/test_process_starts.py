"""Every process repolink starts goes through git/runner.py (architecture.md#security).

Every module of ``src/repolink`` is parsed; importing ``subprocess``, ``pty`` or
``multiprocessing``, or calling anything of ``os`` or ``asyncio`` that starts a program, outside
``repolink/git/runner.py`` fails the test, naming the module and the line. The only way to start
a process is then a :class:`repolink.git.runner.GitRunner`, which the application hands out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import repolink

PACKAGE = Path(repolink.__file__).parent
RUNNER = PACKAGE / "git" / "runner.py"

FORBIDDEN_MODULES = frozenset({"subprocess", "pty", "multiprocessing"})
# os.exec*, os.spawn*, os.posix_spawn*, os.fork*, os.system, os.popen; asyncio's subprocesses.
FORBIDDEN_OS_PREFIXES = ("exec", "spawn", "posix_spawn", "fork")
FORBIDDEN_OS_NAMES = frozenset({"system", "popen"})
FORBIDDEN_ASYNCIO = frozenset({"create_subprocess_exec", "create_subprocess_shell"})


def _forbidden_attribute(owner: str, name: str) -> bool:
    if owner == "os":
        return name.startswith(FORBIDDEN_OS_PREFIXES) or name in FORBIDDEN_OS_NAMES
    if owner == "asyncio":
        return name in FORBIDDEN_ASYNCIO
    return False


def process_starts(path: Path) -> list[str]:
    """``line: what`` for each way of starting a process that ``path`` uses."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            top = node.module.split(".")[0]
            for alias in node.names:
                if top in FORBIDDEN_MODULES or _forbidden_attribute(top, alias.name):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and _forbidden_attribute(node.value.id, node.attr)
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_only_the_runner_starts_processes() -> None:
    offenders = {
        str(path.relative_to(PACKAGE.parent)): starts
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != RUNNER and (starts := process_starts(path))
    }
    assert offenders == {}, "start processes through a GitRunner (repolink.git.runner)"


@pytest.mark.parametrize(
    "source",
    [
        "import subprocess\n",
        "from subprocess import Popen\n",
        "import os\nos.execvpe('git', ['git'], {})\n",
        "import os\nos.posix_spawn('git', ['git'], {})\n",
        "from os import execv\n",
        "import asyncio\nasyncio.create_subprocess_exec('git')\n",
        "import os\nos.system('git')\n",
    ],
)
def test_each_way_of_starting_a_process_is_caught(tmp_path: Path, source: str) -> None:
    module = tmp_path / "module.py"
    module.write_text(source)
    assert process_starts(module)


def test_the_runner_itself_is_seen_to_start_processes() -> None:
    # The check would pass vacuously if it recognised nothing the runner does.
    assert process_starts(RUNNER)
