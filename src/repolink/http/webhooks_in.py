"""Webhook receivers: ``POST /hooks/{provider}/{project}``, one URL per provider and project.

No bearer token: the signature is the authentication, checked by the service
(:meth:`repolink.platform.webhooks_in.WebhookInService.receive`) over the body exactly as it
arrived. This adapter only reads that body — counted as it streams, and refused with 413 the
moment it passes :data:`MAX_BODY_BYTES`, whatever ``Content-Length`` claimed — and answers:

- 202 with what became of the delivery (``queued`` with the fetch's id, ``ignored_event``,
  ``ping``, ``replayed``, ``other_repository``, ``not_connected``);
- 401 ``webhook_signature_invalid`` for a wrong or missing signature, an unknown project and a
  project without a secret alike;
- 404 for an unknown provider, 400 for a signed push whose body is not JSON, 413 over 1 MiB.

And the project's webhook settings in the platform API, for its members (bearer token):
``GET /api/v1/projects/{project}/webhooks`` — ``urls`` (provider → absolute URL), ``secret``
(project admins only, made on first read; ``null`` for everyone else), ``secret_set`` and the
recent ``deliveries``; ``POST …/webhooks/secret`` makes a new secret (admins; audited).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from repolink.auth.principal import Principal, Role
from repolink.http.auth import current_principal, principal_route_class
from repolink.platform.webhooks_in import (
    KEEP_DELIVERIES,
    PROVIDER_NAMES,
    RECEIVER_PATH,
    ReceivedDelivery,
    WebhookDeliveryInfo,
    receiver_paths,
)

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext

log = logging.getLogger(__name__)

HOOKS_PATH = RECEIVER_PATH
# Webhook payloads of a big push run to hundreds of KiB; more is not a webhook.
MAX_BODY_BYTES = 1024 * 1024

_RECEIVED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["outcome", "provider", "event", "delivery_id", "fetch_id"],
    "properties": {
        "outcome": {
            "type": "string",
            "enum": [
                "queued",
                "ping",
                "ignored_event",
                "replayed",
                "other_repository",
                "not_connected",
                "failed",
            ],
        },
        "provider": {"type": "string", "enum": list(PROVIDER_NAMES)},
        "event": {"type": "string"},
        "delivery_id": {"type": ["string", "null"]},
        "fetch_id": {"type": ["integer", "null"], "description": "the fetch run queued or joined"},
    },
}


def hook_path(provider: str, project: str) -> str:
    """The receiver's path for ``provider`` and ``project``."""
    return HOOKS_PATH.format(provider=provider, project=project)


def build_webhook_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """The receivers, on a plain route class: the signature is their authentication."""
    router = APIRouter(tags=["webhooks"])

    @router.post(
        HOOKS_PATH,
        summary="Receive a forge's push webhook for a project",
        description=(
            "Providers: " + ", ".join(PROVIDER_NAMES) + ". The body is signed with the "
            "project's webhook secret (HMAC-SHA256 of the raw body; GitLab sends the secret "
            "itself). A push for the project's repository queues a fetch; the payload's "
            "commits are never trusted."
        ),
        status_code=202,
        responses={
            202: {
                "description": "received: what became of it",
                "content": {"application/json": {"schema": _RECEIVED_SCHEMA}},
            },
            401: {"description": "not signed with the project's secret, or no such project"},
            413: {"description": "the body is over 1 MiB"},
        },
    )
    async def receive(provider: str, project: str, request: Request) -> JSONResponse:
        body = await read_capped_body(request, MAX_BODY_BYTES)
        received = await run_in_threadpool(
            application.webhooks_in.receive,
            provider,
            project,
            dict(request.headers.items()),
            body,
        )
        return JSONResponse(received_body(received), status_code=202)

    return router


async def read_capped_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, or 413 as soon as more than ``max_bytes`` have arrived.

    ``Content-Length`` is believed only when it says too much: a body is counted as it
    streams, so a chunked or lying request is cut off at the limit, never read whole.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise StarletteHTTPException(413)
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise StarletteHTTPException(413)
            chunks.append(chunk)
    except ValueError:
        # The app's body-size middleware cut the stream off at its own limit.
        raise StarletteHTTPException(413) from None
    return b"".join(chunks)


def received_body(received: ReceivedDelivery) -> dict[str, Any]:
    return {
        "outcome": received.outcome,
        "provider": received.provider,
        "event": received.event,
        "delivery_id": received.delivery_id,
        "fetch_id": int(received.fetch_run_id) if received.fetch_run_id else None,
    }


# -- the project's webhook settings (platform API) ------------------------------------------

API_PREFIX = "/api/v1"
SETTINGS_PATH = API_PREFIX + "/projects/{project}/webhooks"
DEFAULT_DELIVERIES = 50
# An answer holding the secret is kept by no cache, shared or the browser's.
NOT_STORED = {"Cache-Control": "no-store"}
# At module level: the routes' annotations are strings, resolved in this module's namespace.
Caller = Annotated[Principal, Depends(current_principal)]


class WebhookDelivery(BaseModel):
    id: int
    provider: str
    event: str
    delivery_id: str | None
    outcome: str
    fetch_id: int | None = Field(description="the fetch run it queued or joined")
    received_at: datetime


class Webhooks(BaseModel):
    urls: dict[str, str] = Field(description="provider → the receiver's absolute URL")
    secret: str | None = Field(description="the webhook secret: project admins only")
    secret_set: bool
    deliveries: list[WebhookDelivery] = Field(description="the most recent first")


class NewWebhookSecret(BaseModel):
    secret: str
    created_at: datetime


def build_webhook_settings_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """``…/projects/{project}/webhooks``: authenticated before the body is read."""
    router = APIRouter(route_class=principal_route_class(application), tags=["webhooks"])

    @router.get(
        SETTINGS_PATH,
        summary="The project's webhook URLs, secret (admins) and recent deliveries",
        response_model=Webhooks,
    )
    def webhooks(
        project: str,
        request: Request,
        response: Response,
        principal: Caller,
        limit: Annotated[int, Query(ge=1, le=KEEP_DELIVERIES)] = DEFAULT_DELIVERIES,
    ) -> Webhooks:
        # A plain function: FastAPI runs it on a worker thread, the services block.
        role = application.access.role(principal, project)
        service = application.webhooks_in
        deliveries = service.deliveries(project, limit=limit)
        secret = None
        if role.allows(Role.ADMIN):
            made = service.secret(project)
            if made.new:
                application.audit.record(principal, "webhook_secret.create", project=project)
            secret = made.value
            response.headers.update(NOT_STORED)
        base = str(request.base_url).rstrip("/")
        return Webhooks(
            urls={name: base + path for name, path in receiver_paths(project).items()},
            secret=secret,
            secret_set=secret is not None or service.has_secret(project),
            deliveries=[_delivery(delivery) for delivery in deliveries],
        )

    @router.post(
        SETTINGS_PATH + "/secret",
        summary="Make a new webhook secret (project admins); the old one stops verifying",
        response_model=NewWebhookSecret,
    )
    def regenerate(project: str, response: Response, principal: Caller) -> NewWebhookSecret:
        application.access.project(principal, project, Role.ADMIN)
        made = application.webhooks_in.regenerate_secret(project)
        application.audit.record(principal, "webhook_secret.rotate", project=project)
        response.headers.update(NOT_STORED)
        return NewWebhookSecret(secret=made.value, created_at=made.created_at)

    return router


def _delivery(delivery: WebhookDeliveryInfo) -> WebhookDelivery:
    return WebhookDelivery(
        id=delivery.id,
        provider=delivery.provider,
        event=delivery.event,
        delivery_id=delivery.delivery_id,
        outcome=delivery.outcome,
        fetch_id=int(delivery.fetch_run_id) if delivery.fetch_run_id else None,
        received_at=delivery.received_at,
    )
