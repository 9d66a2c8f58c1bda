"""The embedded job queue: jobs kept as rows of the application's own tables.

Any mapped table with the queue's columns can hold jobs of one kind — ``status``,
``attempts``, ``next_attempt_at``, ``claimed_until``, ``last_error``, ``updated_at`` and an
integer ``id`` — beside whatever the kind needs (a webhook delivery's hook and body). Several
processes may share the database: a job is *claimed* by one conditional UPDATE that sets
``claimed_until`` a lease into the future, so only one process runs a given attempt, and a
claimer that dies is replaced when its lease ends.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from repolink.jobs.queue import Job, Settled, State
from repolink.store import Store, utcnow

log = logging.getLogger(__name__)

# How long a claimed job is reserved for its claimer; far longer than one attempt.
CLAIM_LEASE = timedelta(seconds=60)
PENDING = "pending"
FAILED = "failed"


@dataclass(frozen=True)
class JobTable:
    """How one table holds the jobs of one kind.

    ``keep`` bounds what is remembered: finished jobs beyond the newest ``keep`` of each value
    of ``group_by`` (a webhook's deliveries, per hook) are forgotten as jobs finish.
    """

    kind: str
    model: type[Any]
    done_status: str = "done"
    group_by: str | None = None
    keep: int | None = None

    def new_job(self, now: datetime, **columns: Any) -> Any:
        """A pending row of this table, due ``now``; the caller adds it to a session."""
        return self.model(
            **columns,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )

    def unclaimed(self, now: datetime) -> ColumnElement[bool]:
        claimed_until = self.model.claimed_until
        return or_(claimed_until.is_(None), claimed_until <= now)

    def due(self, now: datetime) -> ColumnElement[bool]:
        """Pending, due, and not held by another process (or by one whose lease ran out)."""
        return and_(
            self.model.status == PENDING, self.model.next_attempt_at <= now, self.unclaimed(now)
        )


class TableQueue:
    """A :class:`~repolink.jobs.queue.JobQueue` over tables of the store, one kind each."""

    def __init__(
        self, store: Store, tables: Sequence[JobTable], *, lease: timedelta = CLAIM_LEASE
    ) -> None:
        self._store = store
        self._tables = {table.kind: table for table in tables}
        self._lease = lease

    def enqueue(self, kind: str, args: Mapping[str, Any], *, session: Session | None = None) -> int:
        """A new pending job; inside ``session`` when given, so it commits with the caller."""
        table = self._table(kind)
        if session is not None:
            return _add(session, table, args)
        with self._store.session() as own:
            return _add(own, table, args)

    def claim(self, kinds: Collection[str], limit: int) -> list[Job]:
        now = utcnow()
        claimed: list[Job] = []
        for kind in kinds:
            table = self._table(kind)
            with self._store.session() as session:
                candidates = list(
                    session.scalars(
                        select(table.model.id)
                        .where(table.due(now))
                        .order_by(table.model.next_attempt_at, table.model.id)
                        .limit(limit - len(claimed))
                    )
                )
            for job_id in candidates:
                # One short write transaction per claim: it starts with the UPDATE, so two
                # claimers never both hold a read snapshot they then try to write from.
                with self._store.session() as session:
                    job = self._claim_one(session, table, job_id, now)
                if job is not None:
                    claimed.append(job)
            if len(claimed) >= limit:
                break
        return claimed

    def claim_one(self, kind: str, job_id: int) -> Job | None:
        """Claim job ``job_id`` if it is due and no one holds it; else ``None``."""
        with self._store.session() as session:
            return self._claim_one(session, self._table(kind), job_id, utcnow())

    def due_at(self, kind: str, job_id: int) -> datetime | None:
        """When pending job ``job_id`` may next be claimed (its due time, or the end of the
        lease another process holds it by); ``None`` when it is finished or gone."""
        model = self._table(kind).model
        with self._store.session() as session:
            row = session.execute(
                select(model.status, model.next_attempt_at, model.claimed_until).where(
                    model.id == job_id
                )
            ).first()
        if row is None or row.status != PENDING or row.next_attempt_at is None:
            return None
        due: datetime = row.next_attempt_at
        held: datetime | None = row.claimed_until
        return due if held is None else max(due, held)

    def overdue(self, kind: str, before: datetime) -> list[int]:
        """Pending jobs of ``kind`` due since before ``before`` and held by no one: ones whose
        wake-up was lost with the process that enqueued them, or is late."""
        table = self._table(kind)
        model = table.model
        with self._store.session() as session:
            return list(
                session.scalars(
                    select(model.id)
                    .where(table.due(utcnow()), model.next_attempt_at <= before)
                    .order_by(model.id)
                )
            )

    def finish(self, settled: Sequence[Settled]) -> None:
        now = utcnow()
        touched: set[tuple[str, Any]] = set()
        with self._store.session() as session:
            for item in settled:
                table = self._table(item.job.kind)
                row = session.get(table.model, item.job.id)
                if row is None:  # removed meanwhile (its hook, its repository went)
                    continue
                _settle(table, row, item, now)
                if table.group_by is not None:
                    touched.add((table.kind, getattr(row, table.group_by)))
            session.flush()
            for kind, group in touched:
                _prune(session, self._tables[kind], group)

    def release(self, jobs: Sequence[Job]) -> None:
        now = utcnow()
        with self._store.session() as session:
            for job in jobs:
                model = self._table(job.kind).model
                # Only a job still held: one its handler settled on its way out stays so.
                session.execute(
                    update(model)
                    .where(
                        model.id == job.id,
                        model.status == PENDING,
                        model.claimed_until.is_not(None),
                    )
                    .values(
                        attempts=model.attempts - 1,  # claimed: at least 1
                        claimed_until=None,
                        next_attempt_at=now,
                        updated_at=now,
                    )
                )

    def next_due(self, kinds: Collection[str]) -> datetime | None:
        now = utcnow()
        moments: list[datetime] = []
        with self._store.session() as session:
            for kind in kinds:
                table = self._table(kind)
                moment = session.scalar(
                    select(func.min(table.model.next_attempt_at)).where(
                        table.model.status == PENDING, table.unclaimed(now)
                    )
                )
                if moment is not None:
                    moments.append(moment)
        return min(moments, default=None)

    def _claim_one(
        self, session: Session, table: JobTable, job_id: int, now: datetime
    ) -> Job | None:
        model = table.model
        # Core UPDATE on the session's connection: its rowcount says whether we won the claim.
        result = session.connection().execute(
            update(model)
            .where(model.id == job_id, table.due(now))
            .values(attempts=model.attempts + 1, claimed_until=now + self._lease, updated_at=now)
        )
        if result.rowcount != 1:
            return None  # another process claimed it first
        attempts = session.scalar(select(model.attempts).where(model.id == job_id))
        if attempts is None:
            return None
        return Job(id=job_id, kind=table.kind, attempt=attempts)

    def _table(self, kind: str) -> JobTable:
        try:
            return self._tables[kind]
        except KeyError:
            raise ValueError(f"this queue holds no jobs of kind {kind!r}") from None


def _add(session: Session, table: JobTable, args: Mapping[str, Any]) -> int:
    row = table.new_job(utcnow(), **args)
    session.add(row)
    session.flush()
    job_id: int = row.id
    return job_id


def _settle(table: JobTable, row: Any, item: Settled, now: datetime) -> None:
    for name, value in item.details.items():
        if not hasattr(table.model, name):
            raise ValueError(f"{table.kind} jobs have no detail {name!r}")
        setattr(row, name, value)
    row.last_error = item.error
    row.claimed_until = None
    row.updated_at = now
    if item.state is State.RETRY:
        row.next_attempt_at = item.retry_at
        return
    row.status = table.done_status if item.state is State.DONE else FAILED
    row.next_attempt_at = None


def _prune(session: Session, table: JobTable, group: Any) -> None:
    """Forget finished jobs of ``group`` beyond the newest ``table.keep``."""
    if table.keep is None or table.group_by is None:
        return
    model = table.model
    column = getattr(model, table.group_by)
    cutoff = session.scalar(
        select(model.id)
        .where(column == group)
        .order_by(model.id.desc())
        .offset(max(table.keep, 1))
        .limit(1)
    )
    if cutoff is None:
        return
    session.execute(
        delete(model)
        .where(column == group, model.id <= cutoff, model.status != PENDING)
        .execution_options(synchronize_session=False)
    )
