"""A worker process started in the background, for a caller that must not wait for the work.

OpenSSH mode's ``repolink host shell`` returns to the git client as soon as the push is done;
the jobs it enqueued are run by a ``repolink …`` command started here, in a session of its own
with no standard streams, so neither the client's connection nor sshd waits for it. The
caller's :class:`repolink.git.runner.GitRunner` starts it, like every process repolink starts.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from repolink.git.runner import GitRunner
from repolink.settings import Settings

log = logging.getLogger(__name__)


def spawn_detached(
    settings: Settings, arguments: Sequence[str], *, what: str, runner: GitRunner
) -> bool:
    """Start ``repolink ARGUMENTS`` detached from this process and its terminal.

    ``what`` names the process in the log line of a failure. Whether it started; a failure to
    start is logged, never raised: the caller's own work has already succeeded.
    """
    started = runner.start_detached(
        [sys.executable, "-m", "repolink", *arguments],
        env=child_environment(settings),
        cwd=settings.resolved_data_dir,
    )
    if not started:
        log.error("the %s did not start; its jobs stay queued", what)
    return started


def child_environment(settings: Settings) -> dict[str, str]:
    """This environment, with ``settings`` in it: the child reads its settings from the
    environment like any repolink command, and gets these same ones even when ``settings`` was
    built in code (:meth:`Settings.to_env`)."""
    return {**os.environ, **settings.to_env()}
