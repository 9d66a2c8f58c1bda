"""A worker's id (:mod:`repolink.jobs.identity`): written once to its data directory, the same
for every process on that directory and after restarts, another for another directory, and
replaced when the file holds none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from repolink.jobs.identity import WORKER_ID_FILE, worker_id


def test_a_data_directory_keeps_its_worker_id(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = worker_id(data_dir)
    assert (data_dir / WORKER_ID_FILE).read_text() == first + "\n"
    # Another process on the directory (a restart) reads the same id.
    again = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path;"
            " from repolink.jobs.identity import worker_id; print(worker_id(Path(sys.argv[1])))",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert again == first
    assert worker_id(tmp_path / "other") != first
    assert [path.name for path in data_dir.iterdir()] == [WORKER_ID_FILE]


def test_a_file_holding_no_id_is_replaced(tmp_path: Path) -> None:
    (tmp_path / WORKER_ID_FILE).write_text("not an id; rm -rf /\n")
    fresh = worker_id(tmp_path)
    assert (tmp_path / WORKER_ID_FILE).read_text() == fresh + "\n"
    assert worker_id(tmp_path) == fresh
