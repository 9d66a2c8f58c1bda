"""Jobs: work done after the request that asked for it, retried when it fails for a while.

- :mod:`repolink.jobs.queue` — the interface: :class:`Job`, :class:`Outcome`, :class:`JobQueue`;
- :mod:`repolink.jobs.table` — the embedded queue, jobs as rows of the application's tables;
- :mod:`repolink.jobs.retry` — :class:`RetryPolicy`, backoff for transient failures only;
- :mod:`repolink.jobs.worker` — :class:`Worker`, running due jobs by a :class:`HandlerRegistry`;
- :mod:`repolink.jobs.detached` — a worker process started in the background.

The core layer: a job's kind and handler belong to the service that defines them (the host's
``deliver_webhook``); nothing here knows what any job does.
"""

from __future__ import annotations

from repolink.jobs.queue import Job, JobQueue, Outcome, Settled, State
from repolink.jobs.retry import RetryPolicy
from repolink.jobs.worker import Handler, HandlerRegistry, JobCounts, Worker

__all__ = [
    "Handler",
    "HandlerRegistry",
    "Job",
    "JobCounts",
    "JobQueue",
    "Outcome",
    "RetryPolicy",
    "Settled",
    "State",
    "Worker",
]
