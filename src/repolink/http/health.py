"""``/healthz`` and ``/readyz``: what a supervisor or a load balancer asks the server.

``/healthz`` says the process answers, and touches nothing else: a database outage must not
make a supervisor restart a server that would work again once the database is back.
``/readyz`` says whether requests can be served: the database answers and its schema is at
the revision this server needs; otherwise 503 in the one error shape. Neither needs a token:
they tell nothing but "ok" or which of the two is wrong.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext

log = logging.getLogger(__name__)


class Status(BaseModel):
    status: str


def build_health_router(application: Repolink, context: ServiceContext) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The server process is alive", response_model=Status)
    async def healthz() -> Status:
        return Status(status="ok")

    @router.get(
        "/readyz",
        summary="The server can serve: database reachable, schema current",
        response_model=Status,
        responses={503: {"description": "the database does not answer or is not migrated"}},
    )
    def readyz() -> Status:
        # A plain function: FastAPI runs it on a worker thread, the database call blocks.
        application.store.check_ready()
        return Status(status="ready")

    return router
