"""repolink.cli.coercion: values already of a parameter's plain type skip Typer's pydantic
coercion; every other value is still coerced, and refused, as Typer does (issue 10 §2)."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer

import repolink.cli.root  # noqa: F401  (installs the coercion, as every command tree does)
from repolink.cli.coercion import _Unchanged

seen: dict[str, object] = {}

app = typer.Typer()


@app.command()
def command(
    name: Annotated[str, typer.Argument()],
    limit: Annotated[int, typer.Option()] = 50,
    label: Annotated[str | None, typer.Option()] = None,
    flag: Annotated[bool, typer.Option("--flag")] = False,
    ratio: Annotated[float, typer.Option()] = 0.5,
) -> None:
    seen.update(name=name, limit=limit, label=label, flag=flag, ratio=ratio)


def _run(*args: str) -> dict[str, object]:
    seen.clear()
    typer.main.get_command(app).main(list(args), standalone_mode=False)
    return dict(seen)


def test_plain_values_pass_unchanged_and_text_is_still_coerced() -> None:
    assert _run("proj") == {"name": "proj", "limit": 50, "label": None, "flag": False, "ratio": 0.5}
    got = _run("proj", "--limit", "7", "--label", "x", "--flag", "--ratio", "2")
    assert got == {"name": "proj", "limit": 7, "label": "x", "flag": True, "ratio": 2.0}
    assert type(got["limit"]) is int and type(got["ratio"]) is float


def test_a_value_typer_refuses_is_still_refused() -> None:
    with pytest.raises(typer.BadParameter) as bad:
        _run("proj", "--limit", "many")
    assert "--limit" in bad.value.format_message()


def test_only_plain_annotations_get_the_shortcut() -> None:
    command = typer.main.get_command(app)
    kinds = {
        param.name: type(param.get_runtime_param()).__name__  # type: ignore[attr-defined]
        for param in command.params
    }
    shortcut = _Unchanged.__name__
    assert kinds["name"] == kinds["limit"] == kinds["label"] == kinds["flag"] == shortcut
    assert kinds["ratio"] != shortcut  # a float is Typer's to coerce ("2" and 2 alike)


ranged = typer.Typer()


@ranged.command()
def bounded(count: Annotated[int, typer.Option(min=1, max=9)] = 5) -> None:
    seen.update(count=count)


@pytest.mark.parametrize("given", ["7", "-7", "007", "123456789012345678"])
def test_a_decimal_for_an_int_is_read_as_typer_reads_it(given: str) -> None:
    from typer._coercion import build_runtime_param

    command = typer.main.get_command(app)
    (limit,) = [param for param in command.params if param.name == "limit"]
    typer_own = build_runtime_param(limit.type_descriptor)  # type: ignore[attr-defined]
    expected = typer_own._coerce_value(given, param=limit, ctx=None)
    assert _run("proj", "--limit", given)["limit"] == expected == int(given)


def test_a_ranged_int_is_still_checked_by_typer() -> None:
    with pytest.raises(typer.BadParameter):
        typer.main.get_command(ranged).main(["--count", "10"], standalone_mode=False)
    seen.clear()
    typer.main.get_command(ranged).main(["--count", "9"], standalone_mode=False)
    assert seen == {"count": 9}
