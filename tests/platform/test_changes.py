"""The change feed (``app.changes``): on PostgreSQL a notification on ``repolink_changes`` wakes
the watches of its project and no other; the listening connection, killed, is opened again, and
every watch is woken both when it is lost and once it listens again (what was announced
meanwhile is lost: the waiters read again); on SQLite a write of the process wakes the watches,
a read does not; closing the feed ends every watch. Timed re-reads are pushed out of the tests'
reach: only the feed wakes anyone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg

from repolink.app import Repolink
from repolink.jobs.procrastinate_backend import conninfo
from repolink.platform.changes import APPLICATION, CHANNEL, ChangeFeed
from repolink.settings import Settings

WAIT = 60.0
NEVER = 3600.0


def _feed(url: str) -> ChangeFeed:
    return ChangeFeed(conninfo(url), heartbeat=NEVER, poll_interval=NEVER)


async def _until_live(feed: ChangeFeed) -> None:
    async with asyncio.timeout(WAIT):
        while not feed.live:
            await asyncio.sleep(0.05)


def _notify(url: str, payload: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as db:
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def _kill_listener(url: str) -> int:
    with psycopg.connect(conninfo(url), autocommit=True) as db:
        rows = db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (APPLICATION,),
        ).fetchall()
    return len(rows)


def test_a_notification_wakes_the_watches_of_its_project_only(postgres_url: str) -> None:
    feed = _feed(postgres_url)

    async def scenario() -> None:
        async with feed.watch("p1") as first, feed.watch("p2") as second:
            await _until_live(feed)
            assert await first.wait(WAIT) and await second.wait(WAIT)  # listening: read
            await asyncio.to_thread(_notify, postgres_url, "p1")
            assert await first.wait(WAIT)
            assert not second.woken
        await feed.close()

    asyncio.run(scenario())


def test_a_lost_listening_connection_comes_back_and_every_watch_reads_again(
    postgres_url: str,
) -> None:
    feed = _feed(postgres_url)

    async def scenario() -> None:
        async with feed.watch("p1") as watch:
            await _until_live(feed)
            assert await watch.wait(WAIT)  # listening, it woke everyone to read
            assert await asyncio.to_thread(_kill_listener, postgres_url) == 1
            # Nothing was announced, and yet: lost, then listening again, it wakes everyone.
            assert await watch.wait(WAIT)
            await _until_live(feed)
            if watch.woken:  # the wake-up of listening again, when the loss's was taken
                assert await watch.wait(WAIT)
            await asyncio.to_thread(_notify, postgres_url, "p1")
            assert await watch.wait(WAIT)
        await feed.close()

    asyncio.run(scenario())


def test_closing_the_feed_ends_every_watch(postgres_url: str) -> None:
    feed = _feed(postgres_url)

    async def scenario() -> None:
        async with feed.watch("p1") as watch:
            waiting = asyncio.create_task(watch.wait(NEVER))
            await feed.close()
            assert await waiting
            assert watch.closed
        assert not feed.live

    asyncio.run(scenario())


def test_on_sqlite_a_write_of_the_process_wakes_the_watches_and_a_read_does_not(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", live_heartbeat=NEVER, live_poll_interval=NEVER)
    with Repolink(settings) as app:

        async def scenario() -> None:
            async with app.changes.watch("any project") as watch:
                await asyncio.to_thread(app.projects.list_projects)
                assert not watch.woken
                await asyncio.to_thread(app.projects.create_project, "Acme", slug="acme")
                assert watch.woken

        assert not app.changes.live
        asyncio.run(scenario())
