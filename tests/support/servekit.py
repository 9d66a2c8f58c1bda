"""``repolink host serve`` as a real subprocess on ports it picks, with the ports it reports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVE = [sys.executable, "-m", "repolink", "host", "serve"]


@contextmanager
def serving(
    data_dir: Path, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """The server process, its SSH port and its HTTP port, until the block ends.

    ``settings`` are its ``REPOLINK_`` variables besides the data directory; nothing of this
    process's own ``REPOLINK_`` environment goes with them.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPOLINK_")}
    env["REPOLINK_DATA_DIR"] = str(data_dir)
    env.update(settings or {})
    process = subprocess.Popen(
        [*SERVE, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ssh_port = http_port = 0
        while not (ssh_port and http_port):
            line = process.stdout.readline()
            if not line:
                pytest.fail(
                    f"serve exited early: {process.stderr.read() if process.stderr else ''}"
                )
            if match := re.match(r"SSH server on 127\.0\.0\.1:(\d+)", line):
                ssh_port = int(match.group(1))
                # Asked for port 0: the clone address names the port really bound.
                assert f"(clone: ssh://git@127.0.0.1:{ssh_port}/WS/SLUG.git)" in line, line
            if match := re.match(r"HTTP API on http://127\.0\.0\.1:(\d+)/", line):
                http_port = int(match.group(1))
        yield process, ssh_port, http_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
