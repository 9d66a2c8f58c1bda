"""When a failed job is tried again: exponential backoff, for transient failures only.

A permanent failure (the target was removed, a secret no longer decrypts) is never retried:
trying again cannot help, and each attempt would repeat the same refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from repolink.jobs.queue import Job, Outcome, Settled, State


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing job is tried, and how long to wait between attempts."""

    max_attempts: int = 5
    base_delay: float = 10.0
    max_delay: float = 3600.0

    def delay_after(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1, 2, …): base × 2^(attempt-1)."""
        seconds = self.base_delay * (2 ** max(attempt - 1, 0))
        return timedelta(seconds=min(seconds, self.max_delay))

    def retry_at(self, attempt: int, now: datetime, *, transient: bool) -> datetime | None:
        """When to try again after failed attempt ``attempt``; ``None``: give up for good."""
        if not transient or attempt >= self.max_attempts:
            return None
        return now + self.delay_after(attempt)


def settle(job: Job, outcome: Outcome, policy: RetryPolicy, now: datetime) -> Settled:
    """What the queue records of an attempt: done, due again by ``policy`` (a transient
    failure with attempts left), or failed for good."""
    if outcome.ok:
        return Settled(job, State.DONE, details=outcome.details)
    retry_at = policy.retry_at(job.attempt, now, transient=outcome.transient)
    if retry_at is None:
        return Settled(job, State.FAILED, error=outcome.error, details=outcome.details)
    return Settled(
        job, State.RETRY, error=outcome.error, retry_at=retry_at, details=outcome.details
    )
