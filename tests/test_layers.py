"""The layers of docs/architecture.md, read from the code's own imports.

Every ``import`` in ``src/repolink`` — at the top of a module, inside a function, under
``TYPE_CHECKING`` — is parsed; an import that runs up a layer fails the test, naming the module,
the line and the import. Arrows point down only: core ← services ← application ← adapters.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import repolink

PACKAGE = Path(repolink.__file__).parent

# The first component under ``repolink`` decides a module's layer.
CORE = "core"
SERVICE = "service"
APPLICATION = "application"
ADAPTER = "adapter"
RANK = {CORE: 0, SERVICE: 1, APPLICATION: 2, ADAPTER: 3}
LAYERS: dict[str, str] = {
    "__init__": CORE,
    "errors": CORE,
    "settings": CORE,
    "keys": CORE,
    "urls": CORE,
    "knownhosts": CORE,
    "vault": CORE,
    "git": CORE,
    "store": CORE,
    "jobs": CORE,
    "auth": CORE,
    "logsafe": CORE,
    "netpolicy": CORE,
    "signing": CORE,
    "repo_urls": CORE,
    "platform": SERVICE,
    "host": SERVICE,
    "admin": SERVICE,
    "accounts": SERVICE,
    "app": APPLICATION,
    "cli": ADAPTER,
    "http": ADAPTER,
    "ssh": ADAPTER,
    "web": ADAPTER,
    "server": ADAPTER,
    "hints": ADAPTER,
    "__main__": ADAPTER,
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    line: int
    target: str  # the imported module, dotted


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[Import]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append(Import(name, node.lineno, target))
            # `from repolink import cli` names a module, not an attribute.
            found += [Import(name, node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return [item for item in found if item.target.split(".")[0] == "repolink"]


def layer_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    if parts == ["repolink"]:
        return CORE
    return LAYERS.get(parts[1])


def all_sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_module_has_a_layer() -> None:
    unplaced = sorted(
        {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in all_sources()}
        - set(LAYERS)
    )
    assert unplaced == [], f"give these a layer here and in docs/architecture.md: {unplaced}"


def test_imports_point_down_only() -> None:
    upward: list[str] = []
    for path in all_sources():
        for item in imports_of(path):
            source, target = layer_of(item.module), layer_of(item.target)
            if source is None or target is None:
                continue  # reported by the test above
            if RANK[target] > RANK[source]:
                upward.append(
                    f"{path.relative_to(PACKAGE)}:{item.line}: {source} {item.module} "
                    f"imports {target} {item.target}"
                )
    assert upward == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from repolink.cli import main\n", ["repolink.cli", "repolink.cli.main"]),
        (
            "def f():\n    from repolink.http import errors\n",
            ["repolink.http", "repolink.http.errors"],
        ),
        ("import repolink.ssh.server\n", ["repolink.ssh.server"]),
        ("from . import runner\n", ["repolink.git", "repolink.git.runner"]),
    ],
)
def test_the_parser_sees_every_kind_of_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: list[str]
) -> None:
    # A module placed as if it were repolink/git/probe.py: the checker must not be blind.
    fake_package = tmp_path / "repolink"
    (fake_package / "git").mkdir(parents=True)
    probe = fake_package / "git" / "probe.py"
    probe.write_text(source)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake_package)
    assert [item.target for item in imports_of(probe)] == expected


def test_an_upward_import_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_package = tmp_path / "repolink"
    (fake_package / "git").mkdir(parents=True)
    (fake_package / "git" / "leak.py").write_text("from repolink.platform.fetch import x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake_package)
    with pytest.raises(AssertionError, match=r"core repolink\.git\.leak imports service"):
        test_imports_point_down_only()


def package_graph() -> dict[str, set[str]]:
    """Top-level module or package → the top-level ones it imports (itself left out)."""
    graph: dict[str, set[str]] = {}
    for path in all_sources():
        source = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        targets = graph.setdefault(source, set())
        for item in imports_of(path):
            parts = item.target.split(".")
            if len(parts) > 1 and parts[1] in LAYERS and parts[1] != source:
                targets.add(parts[1])
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path (first node repeated at the end), or ``[]``."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_two_packages_import_each_other_even_within_a_layer() -> None:
    # Within the core, git/ may use knownhosts/ or the other way round, not both.
    assert cycle_in(package_graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycle_in({"git": {"knownhosts"}, "knownhosts": {"keys", "git"}, "keys": set()}) == [
        "git",
        "knownhosts",
        "git",
    ]
    assert cycle_in({"git": {"knownhosts"}, "knownhosts": {"keys"}}) == []


MAX_MODULE_LINES = 600


def test_every_module_is_small_enough_to_read_in_one_sitting() -> None:
    # One concept a module (docs/architecture.md); past this size a module holds several.
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in all_sources()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
