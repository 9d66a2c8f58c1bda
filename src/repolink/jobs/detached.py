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
    """This environment, naming the same data directory, database and master keys.

    The child reads its settings from the environment like any repolink command; this hands it
    the same ones even when ``settings`` was built in code.
    """
    environment = dict(os.environ)
    environment["REPOLINK_DATA_DIR"] = str(settings.resolved_data_dir)
    if settings.database_url:
        environment["REPOLINK_DATABASE_URL"] = settings.database_url
    if settings.secret_key_file is not None:
        environment["REPOLINK_SECRET_KEY_FILE"] = str(settings.resolved_secret_key_file)
    if settings.secret_key is not None:
        environment["REPOLINK_SECRET_KEY"] = settings.secret_key.get_secret_value()
    return environment
