"""Typer's value coercion, skipped where it has nothing to do.

Typer coerces every parameter's value through a pydantic ``TypeAdapter`` built on first use —
even ``--help``'s ``None`` and a flag's ``False``, which it returns unchanged. Importing
pydantic and building those adapters cost ``repolink project list`` ~0.1 s of its start-up
(issue 10 §2), for nothing: a text given for a ``str`` parameter stays that text, a flag is a
``bool`` already, a default is already of its type. So a parameter whose annotation is one of
those plain types gets a coercion that returns such a value as it is, reads a plain decimal
(``"50"``) for an ``int`` without a range as ``int()`` does (what pydantic answers for it), and
hands anything else to Typer's own, built only then. Installed once, when the CLI is
imported, as :mod:`repolink.cli.help` installs the help's wording.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

from typer import core
from typer._coercion import RuntimeParam, build_runtime_param

_PLAIN_TYPES = (str, bool, int)
# A decimal any int() and pydantic read alike; longer or otherwise written ones are Typer's.
_DECIMAL = re.compile(r"-?[0-9]{1,18}")
_typer_runtime_param = core._TyperParameter.get_runtime_param


@dataclass(frozen=True)
class _Unchanged(RuntimeParam):
    """A value already of the parameter's plain type is returned as it is; any other goes
    through the coercion Typer would have used."""

    accepted: tuple[type, ...] = ()
    descriptor: Any = field(default=None, repr=False)
    decimal: bool = False

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        # bool is an int: True given for an int parameter is Typer's to judge.
        if isinstance(value, self.accepted) and (bool in self.accepted) == isinstance(value, bool):
            return value
        if self.decimal and isinstance(value, str) and _DECIMAL.fullmatch(value):
            return int(value)
        return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def _accepted(descriptor: Any) -> tuple[type, ...] | None:
    """The plain type(s) a value may already have, or ``None`` when Typer must coerce."""
    if descriptor.file_annotation is not None or descriptor.parameter_info.parser is not None:
        return None
    annotation = descriptor.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        members = tuple(arg for arg in get_args(annotation) if arg is not type(None))
    else:
        members = (annotation,)
    if len(members) == 1 and members[0] in _PLAIN_TYPES:
        return members
    return None


def _runtime_param(parameter: Any) -> RuntimeParam:
    if parameter._runtime_param is None and not (parameter.multiple or parameter.nargs != 1):
        accepted = _accepted(parameter.type_descriptor)
        if accepted is not None:
            descriptor = parameter.type_descriptor
            parameter._runtime_param = _Unchanged(
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                accepted=accepted,
                descriptor=descriptor,
                # A range (min=, max=) is checked by Typer's coercion: that value goes there.
                decimal=accepted == (int,) and not descriptor.is_ranged,
            )
    result: RuntimeParam = _typer_runtime_param(parameter)
    return result


def install() -> None:
    """Make every parameter of a plain type skip Typer's pydantic coercion when its value
    needs none."""
    setattr(core._TyperParameter, "get_runtime_param", _runtime_param)  # noqa: B010
