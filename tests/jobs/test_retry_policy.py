"""The retry policy: exponential backoff, capped, for transient failures only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from repolink.jobs import RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_delays_double_from_the_base_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=10.0, max_delay=60.0)
    assert [policy.delay_after(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_transient_failure_is_retried_while_attempts_remain() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=5.0)
    assert policy.retry_at(1, NOW, transient=True) == NOW + timedelta(seconds=5)
    assert policy.retry_at(2, NOW, transient=True) == NOW + timedelta(seconds=10)
    assert policy.retry_at(3, NOW, transient=True) is None


def test_a_permanent_failure_is_never_retried() -> None:
    assert RetryPolicy(max_attempts=5).retry_at(1, NOW, transient=False) is None
