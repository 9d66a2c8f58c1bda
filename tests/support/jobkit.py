"""Helpers of the job tests: tables of test jobs, and a handler that does what a test scripts.

The table lives on a metadata of its own, created in the test's database beside repolink's:
it shows that any table with the queue's columns can hold jobs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from repolink.jobs import Job, Outcome
from repolink.jobs.table import JobTable, TableQueue
from repolink.store import Store, UTCDateTime

ECHO = "echo"
OTHER = "other"


class ScratchBase(DeclarativeBase):
    pass


class _JobColumns:
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(String(100), default="")
    result: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EchoJob(_JobColumns, ScratchBase):
    __tablename__ = "test_echo_jobs"


class OtherJob(_JobColumns, ScratchBase):
    __tablename__ = "test_other_jobs"


def echo_table(keep: int | None = None) -> JobTable:
    return JobTable(kind=ECHO, model=EchoJob, group_by="group", keep=keep)


def other_table() -> JobTable:
    return JobTable(kind=OTHER, model=OtherJob)


def make_queue(store: Store, *, keep: int | None = None, **options: Any) -> TableQueue:
    return TableQueue(store, [echo_table(keep), other_table()], **options)


def row(store: Store, job_id: int, model: type[_JobColumns] = EchoJob) -> Any:
    with store.session() as session:
        found = session.get(model, job_id)
        assert found is not None
        return found


@dataclass
class Script:
    """A handler: each job's text says what its attempts do, one letter per attempt.

    ``o`` succeeds, ``t`` fails transiently, ``p`` fails for good, ``x`` raises. Past the end
    of the text, attempts succeed. Every attempt is recorded, in order.
    """

    store: Store
    attempts: list[tuple[int, int]] = field(default_factory=list)

    async def __call__(self, job: Job) -> Outcome:
        self.attempts.append((job.id, job.attempt))
        text = (await asyncio.to_thread(row, self.store, job.id)).text
        action = text[job.attempt - 1] if job.attempt <= len(text) else "o"
        if action == "t":
            return Outcome.failed("try later", details={"result": f"t{job.attempt}"})
        if action == "p":
            return Outcome.failed("never", transient=False, details={"result": "p"})
        if action == "x":
            raise RuntimeError("the handler broke\nsecond line")
        return Outcome.done(details={"result": f"done at {job.attempt}"})
