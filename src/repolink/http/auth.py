"""Bearer-token authentication of repolink's HTTP APIs.

A token is checked by :func:`repolink.auth.tokens.verify_token`: the settings' admin token or
an active stored token. The check runs before FastAPI reads the request body, so an anonymous
caller learns nothing, not even whether its body would have been valid: a missing and a wrong
token get the same 401, whatever else was sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from repolink.auth.tokens import verify_token
from repolink.errors import Unauthorized
from repolink.logsafe import escaped
from repolink.settings import Settings
from repolink.store import Store

log = logging.getLogger(__name__)


def authenticated_route_class(settings: Settings, store: Store) -> type[APIRoute]:
    """A route class that refuses the request before anything else unless the token is good.

    A FastAPI dependency would run only after the body was read and validated, answering an
    anonymous caller's bad body with a 400; the check has to come first. Build every router
    (and every router included in it) with this class: an included route keeps its own.
    """

    class AuthenticatedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def authenticated_handler(request: Request) -> Response:
                token = bearer_token(request.headers.get("authorization"))
                if not await run_in_threadpool(token_is_valid, settings, store, token):
                    log.debug("refused an unauthenticated request to %s", escaped(request.url.path))
                    raise unauthorized()
                return await handler(request)

            return authenticated_handler

    return AuthenticatedRoute


def bearer_scheme() -> Any:
    """The bearer scheme, declared for the OpenAPI document only: the route class checks."""
    return Depends(HTTPBearer(auto_error=False, description="an admin token of the host"))


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def unauthorized() -> Unauthorized:
    # One answer for every failure: it must not tell a missing token from a wrong one.
    return Unauthorized(
        "unauthorized",
        "authentication required",
        "send an admin token as 'Authorization: Bearer TOKEN'",
    )


def token_is_valid(settings: Settings, store: Store, token: str | None) -> bool:
    if token is None:
        return False
    with store.session() as session:
        return verify_token(session, settings, token)
