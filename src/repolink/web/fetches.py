"""Fetch history: a project's fetch runs, newest first — state, trigger and who asked, when it
was asked for, started and finished, the commits it added, and a failure's error with its fix.

The fix of a failed run is the one the connection keeps for its last failure, when the codes
agree (as the API's ``fetch?wait=true`` answers it); an older failure shows its code and
message, and the way to the Repository page's checks.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import Response

from repolink.errors import RepolinkError
from repolink.web.kit import PageKit
from repolink.web.projects import FETCHES, open_project

log = logging.getLogger(__name__)

HISTORY_SIZE = 50


def build_fetch_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)

    @router.get(FETCHES.route, include_in_schema=False)
    async def fetch_history(request: Request, slug: str) -> Response:
        opened = await open_project(kit, request, slug, FETCHES.role)
        project = opened.project
        runs = await kit.call(kit.app.fetch_requests.history, project.slug, limit=HISTORY_SIZE)
        last_error: tuple[str, str] | None = None
        if any(run.error_code for run in runs):
            try:
                connection = await kit.call(kit.app.connections.connection_info, project.slug)
            except RepolinkError:  # disconnected since: its runs stay, without a fix
                connection = None
            if connection is not None and connection.error_code and connection.error_hint:
                last_error = (connection.error_code, connection.error_hint)
        return kit.page(
            request,
            "projects/fetches.html",
            title=f"Fetch history · {project.name}",
            **opened.layout,
            runs=runs,
            last_error=last_error,
        )

    return router
