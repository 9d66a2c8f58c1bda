"""Polling, for hosts that cannot send webhooks: a connection fetched every so many minutes.

Off by default. :func:`set_polling` sets a connection's interval (1 to :data:`MAX_INTERVAL`
minutes; ``None`` turns it off) and when its first poll is due. A worker's periodic pass
(:meth:`repolink.platform.fetch_requests.FetchRequestService.poll_due`) takes the connections
whose poll is due and requests their fetches (trigger ``poll``; a request joins a fetch
that waits already, so a poll never piles up behind webhooks). Each next poll is the interval
from now with ±10 % jitter, so connections enabled together spread out instead of fetching in
one burst forever. Several processes may run the pass over one database: a poll is taken by a
conditional UPDATE of its due time, so only one of them requests it.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from repolink.errors import ValidationError
from repolink.platform.connections import get_connection
from repolink.store.models.platform import RepositoryConnection

log = logging.getLogger(__name__)

MAX_INTERVAL = 24 * 60
JITTER = 0.10


def checked_interval(minutes: int | None) -> int | None:
    """``minutes`` as a polling interval; ``None`` or 0: off."""
    if minutes is None or minutes == 0:
        return None
    if not 1 <= minutes <= MAX_INTERVAL:
        raise ValidationError(
            "poll_interval_invalid",
            f"a polling interval is 1 to {MAX_INTERVAL} minutes (0: off)",
            "give the interval in whole minutes, or 0 to turn polling off",
            context={"field": "interval"},
        )
    return minutes


def next_poll(now: datetime, minutes: int, rng: random.Random) -> datetime:
    """``minutes`` from ``now``, give or take :data:`JITTER` of it."""
    factor = 1.0 + rng.uniform(-JITTER, JITTER)
    return now + timedelta(minutes=minutes * factor)


def set_polling(
    session: Session, project: str, minutes: int | None, now: datetime, rng: random.Random
) -> int | None:
    """Poll the connection of ``project`` every ``minutes`` (``None``: never); the interval."""
    interval = checked_interval(minutes)
    connection = get_connection(session, project)
    connection.poll_interval_minutes = interval
    connection.next_poll_at = next_poll(now, interval, rng) if interval is not None else None
    session.flush()
    log.info(
        "project %s: polling %s",
        project,
        f"every {interval} minutes" if interval is not None else "off",
    )
    return interval


def due_polls(session: Session, now: datetime) -> list[tuple[str, int, datetime]]:
    """The connections whose poll is due: id, interval, due time."""
    rows = session.execute(
        select(
            RepositoryConnection.id,
            RepositoryConnection.poll_interval_minutes,
            RepositoryConnection.next_poll_at,
        ).where(
            RepositoryConnection.poll_interval_minutes.is_not(None),
            RepositoryConnection.next_poll_at <= now,
        )
    )
    return [
        (connection_id, minutes, due)
        for connection_id, minutes, due in rows
        if minutes is not None and due is not None
    ]


def take_poll(session: Session, connection_id: str, due: datetime, next_at: datetime) -> bool:
    """Move the connection's poll from ``due`` to ``next_at``; False when another process
    took it first (its due time is no longer ``due``)."""
    result = session.connection().execute(
        update(RepositoryConnection)
        .where(RepositoryConnection.id == connection_id, RepositoryConnection.next_poll_at == due)
        .values(next_poll_at=next_at)
    )
    return bool(result.rowcount)
