"""How every command's ``--help`` reads: one formatter for the whole CLI, installed when the
CLI is imported.

Typer's help showed a type beside each parameter — ``<bool>`` beside every flag (which takes
no value), ``<str>`` beside every argument whose metavar already says what it is — and kept
the line breaks of a docstring's later paragraphs, so a sentence wrapped in the source was
broken in the middle of the terminal's line. Typer has no setting for either, and builds its
parameters itself, so the two methods that decide are replaced here, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from typer import core

# A line that starts a list item keeps its line break when a paragraph is reflowed.
_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d+[.)])\s")
# Click's mark for a paragraph to be printed as written.
_VERBATIM = "\b"


# Typer's type names, as a person reads what to type.
_VALUE_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "NUMBER",
    "path": "PATH",
    "Path": "PATH",
    "list[str]": "TEXT",
    "list[int]": "INTEGER",
}
_typer_display_type = core.TyperOption.display_type


def install() -> None:
    """Make every command's help use this module's wording of types and paragraphs."""
    # Typer's own names; a Typer without them formats help its older way, which had neither.
    if hasattr(core.TyperOption, "display_type_rich"):
        setattr(core.TyperOption, "display_type_rich", _option_value)  # noqa: B010
    if hasattr(core.TyperArgument, "display_type_rich"):
        setattr(core.TyperArgument, "display_type_rich", _no_type)  # noqa: B010
    # Typer's Rich renderer is imported only to print help: every other command starts
    # without paying for it.
    for command_class in (core.TyperCommand, core.TyperGroup):
        setattr(command_class, "format_help", _reflowing(command_class.format_help))  # noqa: B010


def _reflowing(format_help: Callable[..., None]) -> Callable[..., None]:
    def format_reflowed_help(command: Any, ctx: Any, formatter: Any) -> None:
        from typer import rich_utils

        if hasattr(rich_utils, "_fix_linebreaks"):
            setattr(rich_utils, "_fix_linebreaks", _reflowed)  # noqa: B010
        format_help(command, ctx, formatter)

    return format_reflowed_help


def _option_value(option: Any, ctx: Any) -> str | None:
    """What an option takes, in capitals as click words it (``TEXT``, ``INTEGER``, ``PATH``),
    or its metavar; nothing for a flag, which takes no value."""
    if option.is_flag or option.count:
        return None
    if option.metavar is not None:
        return str(option.metavar)
    label = str(_typer_display_type(option, ctx)).strip("<>")
    label = _VALUE_WORDS.get(label, label)
    return f"{label}..." if option.nargs != 1 else label


def _no_type(argument: Any, ctx: Any) -> None:
    """An argument is shown by its metavar (``PROJECT``, ``WS/SLUG``), which is its type."""
    return None


def _reflowed(paragraphs: list[str], markup_mode: Any = None) -> str:
    """The paragraphs after a help text's first, each one flowing line (a list item on a line
    of its own), so the terminal wraps whole sentences."""
    return "\n\n".join(reflow(paragraph) for paragraph in paragraphs)


def reflow(paragraph: str) -> str:
    """``paragraph`` with the line breaks of its source joined, except before a list item and
    in a paragraph marked verbatim."""
    if paragraph.lstrip("\n").startswith(_VERBATIM):
        return paragraph
    lines: list[str] = []
    for line in paragraph.splitlines():
        if lines and line.strip() and not _LIST_ITEM.match(line):
            lines[-1] = f"{lines[-1]} {line.strip()}"
        elif line.strip():
            lines.append(line.strip())
    return "\n".join(lines)
