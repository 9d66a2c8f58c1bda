"""A worker's stable identity: a random id written once to ``<data dir>/worker-id``.

A worker's mirrors are a cache under its data directory, so the id goes with the directory,
not with the process: the same data directory after a restart is the same worker, with the
same mirrors, and fetches routed to it (:mod:`repolink.platform.fetch_dispatch`) find them
warm. Two processes on one data directory share the id, as they share the mirrors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

WORKER_ID_FILE = "worker-id"
# Short enough to fit, with the queue's name before it, in PostgreSQL's 63-byte
# application_name, which is how a live worker is recognised.
_VALID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def worker_id(data_dir: Path) -> str:
    """The id of the worker of ``data_dir``, created on first use."""
    path = data_dir / WORKER_ID_FILE
    existing = _read(path)
    if existing is not None:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_hex(6)
    draft = data_dir / f".{WORKER_ID_FILE}.{fresh}"
    draft.write_text(fresh + "\n", encoding="ascii")
    try:
        # A hard link appears whole or not at all: of two processes starting at once on one
        # directory, one id wins and the other reads it, never a half-written file.
        os.link(draft, path)
    except FileExistsError:
        existing = _read(path)
        if existing is None:
            # Malformed by hand: affinity is only an optimisation, so a new id costs at most
            # one cold mirror per connection.
            log.warning("%s holds no valid worker id; writing a new one", path)
            os.replace(draft, path)
            return fresh
        return existing
    finally:
        draft.unlink(missing_ok=True)
    return fresh


def _read(path: Path) -> str | None:
    with contextlib.suppress(FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
        text = path.read_text(encoding="ascii").strip()
        if _VALID.fullmatch(text):
            return text
    return None
