"""Hints below the adapters are adapter-neutral: they say what to change, never which CLI
command or flag to use (the CLI words that itself, :mod:`repolink.hints`).

Every error constructed in ``src/repolink`` outside the adapters is read from the source: the
text of its hint (the third argument, or ``hint=``) must not name a ``repolink`` command or a
``--flag``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import repolink
from repolink import errors
from repolink.cli.root import SUBCOMMANDS

PACKAGE = Path(repolink.__file__).parent
ADAPTERS = {"cli", "http", "ssh", "server.py", "hints.py", "__main__.py"}
ERROR_CLASSES = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.RepolinkError)
}
# `repolink COMMAND` for any command of the CLI, or a --flag; "no repolink process" is fine.
COMMANDS = "|".join(re.escape(name) for name in sorted({*SUBCOMMANDS, "serve", "worker"}))
CLI_WORDS = re.compile(rf"\brepolink (?:{COMMANDS})\b|(?<![\w-])--[a-z]")


def hint_text(call: ast.Call) -> str:
    node: ast.expr | None = call.args[2] if len(call.args) > 2 else None
    for keyword in call.keywords:
        if keyword.arg == "hint":
            node = keyword.value
    if node is None:
        return ""
    return "".join(
        part.value
        for part in ast.walk(node)
        if isinstance(part, ast.Constant) and isinstance(part.value, str)
    )


def called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def test_no_hint_below_the_adapters_names_a_cli_command_or_flag() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] in ADAPTERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and called_name(node) in ERROR_CLASSES:
                text = hint_text(node)
                if CLI_WORDS.search(text):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {text!r}")
    assert offenders == []


def test_the_check_reads_hints_given_either_way() -> None:
    source = (
        'NotFound("x", "m", f"run `repolink fetch {p}`")\n'
        'errors.ValidationError("x", "m", hint="give --limit 5")\n'
        'Conflict("x", "m", "choose another slug")\n'
    )
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    found = [bool(CLI_WORDS.search(hint_text(call))) for call in calls]
    assert found == [True, True, False]
