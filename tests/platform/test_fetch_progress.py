"""A fetch run's progress: git's phases and percent reach the run's row while a worker carries
it out, so a page in any process can show them; a fetch that ends sooner than the interval
writes nothing, and within one phase at most one write per interval; an earlier attempt's
progress is not the current one's."""

from __future__ import annotations

from repolink.app import Repolink
from repolink.git.progress import INDEXING, FetchProgress
from repolink.jobs import Job
from repolink.platform.fetch_jobs import execute_run
from repolink.platform.fetch_progress import ProgressRecorder
from support.platformkit import HostedRepos, Platform, granted_key


def _running_run(app: Repolink, project: str) -> tuple[int, int]:
    """A fetch run of ``project``, claimed as a worker claims it: (run id, attempt)."""
    run = app.fetch_requests.request(project, trigger="api")
    job = app.fetch_requests.queue.claim_run(run.id)
    assert job is not None
    return job.id, job.attempt


def test_a_worker_s_fetch_records_git_s_progress_on_its_run(
    platform: Platform, hosted: HostedRepos
) -> None:
    settings = platform.settings.model_copy(update={"fetch_progress_interval": 0})
    app = Repolink(settings, store=platform.store, runner=platform.runner)
    platform.project("shown")
    app.connections.save("shown", hosted.app.url(), key=granted_key(hosted.host, "app", "shown"))
    run_id, attempt = _running_run(app, "shown")
    assert app.fetch_progress.of_run(run_id) is None  # nothing reported yet

    outcome = execute_run(platform.store, app.fetches, Job(run_id, "fetch_connection", attempt))

    assert outcome.ok, outcome
    progress = app.fetch_progress.of_run(run_id)
    assert progress is not None and progress.attempt == attempt
    # The last thing a fetch reports is its indexing: every commit of the repository.
    assert (progress.phase, progress.done) == (INDEXING, len(hosted.app.host_commits()))
    assert progress.line == f"{INDEXING} {progress.done}"


def test_writes_are_bounded_by_the_interval(platform: Platform, hosted: HostedRepos) -> None:
    app = platform.app
    platform.project("bounded")
    app.connections.save("bounded", hosted.app.url())
    run_id, attempt = _running_run(app, "bounded")
    now = [100.0]
    record = ProgressRecorder(platform.store, run_id, attempt, interval=1.0, clock=lambda: now[0])

    def report(at: float, phase: str, done: int) -> str | None:
        now[0] = 100.0 + at
        record(FetchProgress(phase, done=done, total=100, percent=done, remote=False))
        stored = app.fetch_progress.of_run(run_id)
        return stored.line if stored is not None else None

    assert report(0.5, "Receiving objects", 5) is None  # a fetch this short shows nothing
    assert report(1.0, "Receiving objects", 10) == "Receiving objects 10% (10/100)"
    assert report(1.5, "Receiving objects", 20) == "Receiving objects 10% (10/100)"
    assert report(1.6, "Resolving deltas", 30) == "Resolving deltas 30% (30/100)"  # a new phase
    assert report(2.7, "Resolving deltas", 90) == "Resolving deltas 90% (90/100)"


def test_an_earlier_attempt_s_progress_is_not_shown(
    platform: Platform, hosted: HostedRepos
) -> None:
    app = platform.app
    platform.project("earlier")
    app.connections.save("earlier", hosted.app.url())
    run_id, attempt = _running_run(app, "earlier")
    ProgressRecorder(platform.store, run_id, attempt - 1, interval=0)(
        FetchProgress("Receiving objects", done=1)
    )
    assert app.fetch_progress.of_run(run_id) is None
    ProgressRecorder(platform.store, run_id, attempt, interval=0)(
        FetchProgress("Counting objects", done=7, remote=True)
    )
    progress = app.fetch_progress.of_run(run_id)
    assert progress is not None and progress.line == "remote: Counting objects 7"
