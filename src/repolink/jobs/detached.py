"""A worker process started in the background, for a caller that must not wait for the work.

OpenSSH mode's ``repolink host shell`` returns to the git client as soon as the push is done;
the jobs it enqueued are run by a ``repolink …`` command started here, in a session of its own
with no standard streams, so neither the client's connection nor sshd waits for it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence

from repolink.settings import Settings

log = logging.getLogger(__name__)


def spawn_detached(settings: Settings, arguments: Sequence[str], *, what: str) -> bool:
    """Start ``repolink ARGUMENTS`` detached from this process and its terminal.

    ``what`` names the process in the log line of a failure. Whether it started; a failure to
    start is logged, never raised: the caller's own work has already succeeded.
    """
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "repolink", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            env=child_environment(settings),
            cwd=settings.resolved_data_dir,
        )
    except OSError as exc:
        log.error("cannot start the %s: %s", what, exc.strerror or exc)
        return False
    # Reaped in the background, so a long-lived caller collects no zombie; a daemon thread
    # does not keep a short-lived caller alive.
    threading.Thread(target=process.wait, name=f"{what} reaper", daemon=True).start()
    return True


def child_environment(settings: Settings) -> dict[str, str]:
    """This environment, with ``settings`` in it: the child reads its settings from the
    environment like any repolink command, and gets these same ones even when ``settings`` was
    built in code (:meth:`Settings.to_env`)."""
    return {**os.environ, **settings.to_env()}
