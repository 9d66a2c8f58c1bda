"""Live answers of the pages' JSON addresses: the same JSON, sent again whenever it changes,
as server-sent events.

A page's script polls a small JSON address of its page (``commits/version.json``, the
Repository page's ``state``). Asked with ``Accept: text/event-stream`` (``EventSource``), the
same route answers :func:`event_stream` instead: the JSON at once as an event, then again each
time it reads differently. It reads again when the change feed wakes it
(:mod:`repolink.platform.changes`: a notification from PostgreSQL, whichever API process the
change came through, or a write of this process on SQLite) and every little while anyway, so a
lost wake-up delays an update and never loses it. The route's access check comes first, as
for the JSON; each read checks it again, so a member removed stops hearing at the next change.
The stream ends when the read is refused (the project gone, the role taken away) or the feed
closes (the server stops), and the script's ``EventSource`` connects again; a script whose
stream fails polls the JSON as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from repolink.errors import RepolinkError, StoreError
from repolink.platform.changes import ChangeFeed

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
# What EventSource waits before it connects again after the stream ended (milliseconds).
RECONNECT_MS = 2000
STREAM_HEADERS = {"X-Accel-Buffering": "no"}  # a proxy in front must not hold events back

Read = Callable[[], Awaitable[object]]


def wants_stream(request: Request) -> bool:
    """Whether the request asks for the event stream rather than the JSON."""
    return EVENT_STREAM in request.headers.get("accept", "")


def event_stream(request: Request, feed: ChangeFeed, key: str, event: str, read: Read) -> Response:
    """Server-sent events named ``event`` carrying ``read()``'s JSON, sent at once and again
    whenever it changes; ``key``: the project whose changes wake it."""
    if request.method == "HEAD":
        return Response(media_type=EVENT_STREAM, headers=STREAM_HEADERS)
    return StreamingResponse(
        _events(feed, key, event, read), media_type=EVENT_STREAM, headers=STREAM_HEADERS
    )


async def _events(feed: ChangeFeed, key: str, event: str, read: Read) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MS}\n\n"
    async with feed.watch(key) as watch:
        sent: str | None = None
        while not watch.closed:
            current: str | None
            try:
                current = json.dumps(await read(), sort_keys=True)
            except StoreError as exc:
                # The database is away (restarting): the stream waits for it to come back.
                log.debug("live read failed: %s", exc.one_line())
                current = sent
            except SQLAlchemyError as exc:
                log.debug("live read failed: %s", exc)
                current = sent
            except RepolinkError:
                return  # refused now: the project gone or the role taken away
            if current != sent and current is not None:
                sent = current
                yield f"event: {event}\ndata: {current}\n\n"
            if not await watch.wait(feed.wait_timeout):
                yield ": still here\n\n"  # a comment: keeps a proxy in between from timing out
