"""The server's background purge of ended sessions: its first pass runs at start, and a stop
ends it at once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from repolink.accounts.session_purge import SessionPurge
from repolink.accounts.sessions import ABSOLUTE_LIFETIME
from repolink.app import Repolink
from repolink.store.models.accounts import WebSession
from support.accountskit import PASSWORD, ManualClock, make_account

pytestmark = pytest.mark.databases


def _rows(app: Repolink) -> int:
    with app.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(WebSession)) or 0)


def test_a_server_purges_ended_sessions_in_its_background(
    app: Repolink, clock: ManualClock
) -> None:
    make_account(app, "alice")
    live = app.sessions.sign_in("alice", PASSWORD, source="192.0.2.1")
    with app.store.session() as session:
        session.add(
            WebSession(
                secret_hash="0" * 64,
                user_id=live.signed_in.principal.user_id,
                csrf_secret="x",
                created_at=clock.now - ABSOLUTE_LIFETIME * 2,
                last_seen_at=clock.now - ABSOLUTE_LIFETIME * 2,
                expires_at=clock.now - ABSOLUTE_LIFETIME,
            )
        )
    assert _rows(app) == 2

    async def run() -> None:
        purge = next(
            p
            for p in app.background_work(ssh_url_base=None, fetch_workers=0)
            if isinstance(p, SessionPurge)
        )
        await purge.start()
        try:
            for _ in range(200):  # waits for the first pass, whatever the machine's speed
                if _rows(app) == 1:
                    break
                await asyncio.sleep(0.05)
        finally:
            await purge.stop()

    asyncio.run(run())
    assert _rows(app) == 1
    assert app.sessions.resolve(live.secret) is not None
