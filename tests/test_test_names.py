"""Test modules have unique file names: the suite's rootdir-relative imports (no package
``__init__`` in the test directories) load a module by its base name, so a second
``test_webhooks.py`` in another directory stops the collection of the whole suite with
"import file mismatch" — which a run of one directory never shows."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).parent


def test_no_two_test_modules_share_a_file_name() -> None:
    places: defaultdict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        places[path.name].append(str(path.relative_to(TESTS)))
    shared = {name: sorted(paths) for name, paths in places.items() if len(paths) > 1}
    assert shared == {}, "rename one of each (tests/platform uses test_platform_*.py)"
