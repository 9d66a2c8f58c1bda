"""Fixtures of the CLI tests (the CLI runner lives in ``clikit``).

- ``hosted`` (one per module): the embedded SSH host with ``team/app`` and ``team/other``,
  the peer of the platform commands.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The host's and the platform's test kits (embedded server, hosted repositories) are reused.
from support.hostkit import LoopThread, start_embedded_host
from support.platformkit import HostedRepos, populate


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedRepos]:
    loop = LoopThread()
    host, stop = start_embedded_host(tmp_path_factory.mktemp("cli-host"), loop)
    try:
        yield populate(host)
    finally:
        stop()
        loop.stop()
