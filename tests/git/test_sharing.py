"""repolink.git.sharing: which shared connection was used last, to the nanosecond."""

from __future__ import annotations

from pathlib import Path

from repolink.git.sharing import USED_MARK, _mark_used


def test_connections_used_one_right_after_the_other_are_told_apart(tmp_path: Path) -> None:
    # A touch is stamped with the kernel's coarse clock: uses within one tick (4-10 ms) tied,
    # and the least used connection a server closes was then the directory's order's pick.
    directories = [tmp_path / f"connection{n}" for n in range(20)]
    for directory in directories:
        directory.mkdir()
    for directory in directories:
        _mark_used(directory)
    stamps = [(directory / USED_MARK).stat().st_mtime_ns for directory in directories]
    assert stamps == sorted(stamps) and len(set(stamps)) == 20
