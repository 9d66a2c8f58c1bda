"""The embedded queue: enqueue, claim by lease, finish, retention — in a real SQLite store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from repolink.jobs import Settled, State
from repolink.store import Store, utcnow
from support.jobkit import ECHO, OTHER, EchoJob, OtherJob, ScratchBase, make_queue, row

pytestmark = pytest.mark.databases


def test_an_enqueued_job_is_claimed_once_with_its_attempt_counted(job_store: Store) -> None:
    queue = make_queue(job_store)
    job_id = queue.enqueue(ECHO, {"text": "hello"})
    (job,) = queue.claim([ECHO], 10)
    assert (job.id, job.kind, job.attempt) == (job_id, ECHO, 1)
    # Leased: neither this claimer nor another queue on the same database gets it again.
    assert queue.claim([ECHO], 10) == []
    assert make_queue(job_store).claim([ECHO], 10) == []
    claimed = row(job_store, job_id)
    assert claimed.status == "pending" and claimed.attempts == 1
    assert claimed.claimed_until is not None


def test_a_job_whose_lease_ran_out_is_claimed_again(job_store: Store) -> None:
    # A lease of zero ends at once: the claimer "died" before finishing.
    dying = make_queue(job_store, lease=timedelta(0))
    job_id = dying.enqueue(ECHO, {})
    assert [job.attempt for job in dying.claim([ECHO], 1)] == [1]
    (job,) = make_queue(job_store).claim([ECHO], 1)
    assert (job.id, job.attempt) == (job_id, 2)


def test_claim_takes_only_the_kinds_asked_for_and_at_most_the_limit(job_store: Store) -> None:
    queue = make_queue(job_store)
    echo_ids = [queue.enqueue(ECHO, {"text": str(n)}) for n in range(3)]
    other_id = queue.enqueue(OTHER, {})
    assert [job.id for job in queue.claim([ECHO], 2)] == echo_ids[:2]
    assert [job.id for job in queue.claim([ECHO], 5)] == echo_ids[2:]
    assert row(job_store, other_id, OtherJob).attempts == 0
    assert [(job.id, job.kind) for job in queue.claim([ECHO, OTHER], 5)] == [(other_id, OTHER)]


def test_enqueue_inside_a_callers_transaction_rolls_back_with_it(job_store: Store) -> None:
    queue = make_queue(job_store)
    with pytest.raises(RuntimeError), job_store.session() as session:
        queue.enqueue(ECHO, {"text": "lost"}, session=session)
        raise RuntimeError("the caller failed")
    assert queue.claim([ECHO], 1) == []


def test_finish_records_done_retry_and_failed(job_store: Store) -> None:
    queue = make_queue(job_store)
    ids = [queue.enqueue(ECHO, {}) for _ in range(3)]
    done, retry, failed = queue.claim([ECHO], 3)
    later = utcnow() + timedelta(hours=1)
    queue.finish(
        [
            Settled(done, State.DONE, details={"result": "ok"}),
            Settled(retry, State.RETRY, error="busy", retry_at=later),
            Settled(failed, State.FAILED, error="gone"),
        ]
    )
    rows = [row(job_store, job_id) for job_id in ids]
    assert [(r.status, r.last_error, r.claimed_until) for r in rows] == [
        ("done", None, None),
        ("pending", "busy", None),
        ("failed", "gone", None),
    ]
    assert rows[0].result == "ok" and rows[0].next_attempt_at is None
    assert rows[1].next_attempt_at == later
    assert rows[2].next_attempt_at is None
    # The retried job is not due yet; the queue says when it is.
    assert queue.claim([ECHO], 3) == []
    assert queue.next_due([ECHO]) == later


def test_next_due_ignores_finished_and_leased_jobs(job_store: Store) -> None:
    queue = make_queue(job_store)
    assert queue.next_due([ECHO, OTHER]) is None
    queue.enqueue(ECHO, {})
    queue.claim([ECHO], 1)
    assert queue.next_due([ECHO]) is None  # held by its claimer
    queue.enqueue(OTHER, {})
    assert queue.next_due([ECHO]) is None
    assert queue.next_due([ECHO, OTHER]) is not None


def test_a_detail_the_table_does_not_have_is_refused(job_store: Store) -> None:
    queue = make_queue(job_store)
    queue.enqueue(ECHO, {})
    (job,) = queue.claim([ECHO], 1)
    with pytest.raises(ValueError, match="no detail 'nonsense'"):
        queue.finish([Settled(job, State.DONE, details={"nonsense": 1})])


def test_finished_jobs_beyond_keep_are_forgotten_per_group(job_store: Store) -> None:
    queue = make_queue(job_store, keep=2)
    first = [queue.enqueue(ECHO, {"group": 1}) for _ in range(4)]
    second = [queue.enqueue(ECHO, {"group": 2}) for _ in range(2)]
    waiting = queue.enqueue(ECHO, {"group": 1})  # pending jobs are never forgotten
    finishing = [job for job in queue.claim([ECHO], 10) if job.id != waiting]
    queue.finish([Settled(job, State.DONE) for job in finishing])
    with job_store.session() as session:
        kept = sorted(r.id for r in session.query(EchoJob))
    assert kept == sorted([*first[-1:], *second, waiting])


def test_finish_skips_a_job_removed_meanwhile(job_store: Store) -> None:
    queue = make_queue(job_store)
    job_id = queue.enqueue(ECHO, {})
    (job,) = queue.claim([ECHO], 1)
    with job_store.session() as session:
        session.delete(session.get(EchoJob, job_id))
    queue.finish([Settled(job, State.DONE)])
    with job_store.session() as session:
        assert session.query(EchoJob).count() == 0


def test_an_unknown_kind_is_a_programming_error(job_store: Store) -> None:
    with pytest.raises(ValueError, match="no jobs of kind 'nope'"):
        make_queue(job_store).enqueue("nope", {})
    assert ScratchBase.metadata.tables  # the test tables were created beside repolink's


def test_release_gives_back_only_jobs_still_held_uncounted(job_store: Store) -> None:
    queue = make_queue(job_store)
    held, finished = (queue.enqueue(ECHO, {"text": "o"}) for _ in range(2))
    jobs = {job.id: job for job in queue.claim([ECHO], 2)}
    queue.finish([Settled(jobs[finished], State.DONE)])

    queue.release(list(jobs.values()))
    released = row(job_store, held)
    assert (released.status, released.attempts, released.claimed_until) == ("pending", 0, None)
    assert row(job_store, finished).status == "done"  # settled on its way out: left so
    assert [job.id for job in queue.claim([ECHO], 2)] == [held]  # due at once
