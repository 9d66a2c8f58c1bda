"""The platform API's audit log (issue 11 §3): who created, rotated or deleted keys, changed a
connection, a member, a token or a webhook secret, and when.

``GET /api/v1/audit`` is the whole log, for site admins; ``GET /api/v1/projects/{slug}/audit``
is one project's, for its admins (404 for a project the caller cannot see, 403 below admin).
Newest first, a page at a time: ``next_cursor`` continues the list. The entries hold names,
ids and fingerprints, never key material: the services write them so
(:class:`~repolink.accounts.audit.AuditService`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from repolink.accounts.audit import DEFAULT_LIMIT, MAX_LIMIT
from repolink.accounts.info import AuditPage
from repolink.http.auth import bearer_scheme, principal_route_class
from repolink.http.v1_projects import API_PREFIX, Caller, ProjectSlug

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext

log = logging.getLogger(__name__)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="entries on one page")]
Cursor = Annotated[
    str | None, Query(max_length=32, description="the next_cursor of the previous page")
]


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    project: str | None
    target: str | None
    details: dict[str, str]


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


def build_audit_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """``/api/v1/audit`` and ``/api/v1/projects/{slug}/audit``."""
    router = APIRouter(
        prefix=API_PREFIX,
        route_class=principal_route_class(application),
        dependencies=[bearer_scheme()],
        tags=["audit"],
    )
    audit = application.audit

    @router.get("/audit", response_model=AuditPageOut)
    def site_audit(
        principal: Caller, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> AuditPageOut:
        """The whole audit log, newest first. Site admins."""
        return _page_out(audit.entries(principal, limit=limit, cursor=cursor))

    @router.get("/projects/{slug}/audit", response_model=AuditPageOut)
    def project_audit(
        slug: ProjectSlug, principal: Caller, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> AuditPageOut:
        """One project's audit log, newest first. The project's admins."""
        return _page_out(audit.entries(principal, project=slug, limit=limit, cursor=cursor))

    return router


def _page_out(page: AuditPage) -> AuditPageOut:
    return AuditPageOut(
        items=[
            AuditEntryOut(
                id=entry.id,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                project=entry.project,
                target=entry.target,
                details=dict(entry.details),
            )
            for entry in page.items
        ],
        next_cursor=page.next_cursor,
    )
