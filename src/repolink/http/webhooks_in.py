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
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from repolink.platform.webhooks_in import PROVIDER_NAMES, RECEIVER_PATH, ReceivedDelivery

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.service_app import ServiceContext

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
