"""A project's audit log, for its admins: who created, rotated or deleted keys, changed the
connection, a member or a webhook secret, hid a commit — newest first, a page at a time by the
audit service's cursor. The entries hold names, ids and fingerprints, never key material (the
services write them so); the page shows them as they are."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from repolink.web import paths
from repolink.web.kit import PageKit
from repolink.web.projects import AUDIT, open_project

log = logging.getLogger(__name__)

PAGE_SIZE = 50


def build_audit_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)

    @router.get(AUDIT.route, include_in_schema=False)
    async def audit_log(
        request: Request, slug: str, cursor: str = Query("", max_length=32)
    ) -> Response:
        principal = kit.principal(request)
        opened = await open_project(kit, request, slug, AUDIT.role)
        project = opened.project
        page = await kit.call(
            kit.app.audit.entries,
            principal,
            project=project.slug,
            limit=PAGE_SIZE,
            cursor=cursor or None,
        )
        here = paths.project(project.slug, "settings", "audit")
        return kit.page(
            request,
            "projects/audit.html",
            title=f"Audit log · {project.name}",
            **opened.layout,
            entries=page.items,
            newest_url=here if cursor else "",
            next_url=f"{here}?{urlencode({'cursor': page.next_cursor})}"
            if page.next_cursor
            else "",
        )

    return router
