"""A fetch's success recorded on its connection, as one fixed SQL statement
(:mod:`repolink.store.plain`): the same text inside an ORM transaction
(:func:`repolink.platform.connections.record_success`) and in a refresh that found nothing to
fetch and never imports the ORM (:mod:`repolink.platform.refresh`, issue 10 §2)."""

from __future__ import annotations

from datetime import datetime

from repolink.store.plain import PlainReader

# Mirrors repolink.store.models.platform.STATE_OK, which imports the ORM.
STATE_OK = "ok"

# One UPDATE, no load: it runs after every refresh. No row: disconnected while fetching.
_RECORD_SUCCESS = (
    "UPDATE repository_connections SET state = :state, error_code = NULL,"
    " error_message = NULL, error_hint = NULL, error_reason = NULL, error_context = NULL,"
    " attempted_at = :attempted_at, fetched_at = :fetched_at WHERE id = :id"
)


def record_fetch_success(
    db: PlainReader, connection_id: str, *, attempted_at: datetime, finished_at: datetime
) -> None:
    """The connection fetched fine: state ``ok``, no error, when it was tried and done."""
    db.execute(
        _RECORD_SUCCESS,
        {
            "state": STATE_OK,
            "attempted_at": attempted_at,
            "fetched_at": finished_at,
            "id": connection_id,
        },
    )
