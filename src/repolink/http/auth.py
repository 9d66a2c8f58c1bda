"""Who is calling repolink's HTTP APIs: the principal of a request.

A request authenticates with an API token, as ``Authorization: Bearer TOKEN`` or, as CircleCI's
clients send it, ``Circle-Token: TOKEN``; the settings' admin token is a site admin. The token is
checked by :meth:`repolink.accounts.tokens.TokenService.known` (a token looked up a moment ago,
see :mod:`repolink.auth.principal_cache`) or else ``authenticate`` before FastAPI reads the
request body, so an anonymous caller learns nothing, not even whether its body would have been
valid: a missing, wrong, revoked and expired token all get the same 401, whatever else was sent.
The principal is put on ``request.state.principal``; routes take it with
``Depends(current_principal)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool

from repolink.auth.principal import Principal
from repolink.errors import Unauthorized
from repolink.logsafe import escaped

if TYPE_CHECKING:
    from repolink.app import Repolink

log = logging.getLogger(__name__)

CIRCLE_TOKEN_HEADER = "Circle-Token"  # noqa: S105 (a header name)

Requirement = Callable[[Principal], None]
"""A check of the principal made before the body is read (raising, e.g. ``site_admin_required``)."""


def principal_route_class(
    application: Repolink, *, require: Requirement | None = None
) -> type[APIRoute]:
    """A route class that authenticates the request before anything else and puts its
    principal on ``request.state.principal``; ``require`` (e.g. the host API's site-admin
    check) runs next, still before the body is read.

    A FastAPI dependency would run only after the body was read and validated, answering an
    anonymous caller's bad body with a 400; the check has to come first. Build every router
    (and every router included in it) with this class: an included route keeps its own.
    """
    tokens = application.api_tokens

    class PrincipalRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def authenticated_handler(request: Request) -> Response:
                token = presented_token(request)
                # A token seen a moment ago is known without a hop to a worker thread.
                principal = tokens.known(token)
                if principal is None:
                    principal = await run_in_threadpool(tokens.authenticate, token)
                if principal is None:
                    log.debug("refused an unauthenticated request to %s", escaped(request.url.path))
                    raise unauthorized()
                if require is not None:
                    require(principal)
                request.state.principal = principal
                return await handler(request)

            return authenticated_handler

    return PrincipalRoute


async def current_principal(request: Request) -> Principal:
    """The request's principal (a dependency of routes built with
    :func:`principal_route_class`); a route built without it refuses, failing closed.

    ``async`` although it waits for nothing: FastAPI runs a plain function dependency in its
    thread pool, a hop that cost every request more than the rest of this function."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise unauthorized()
    return principal


def presented_token(request: Request) -> str | None:
    """The bearer token, else the ``Circle-Token`` header's, else ``None``."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        token = (request.headers.get(CIRCLE_TOKEN_HEADER) or "").strip() or None
    return token


def bearer_scheme() -> Any:
    """The bearer scheme, declared for the OpenAPI document only: the route class checks."""
    return Depends(HTTPBearer(auto_error=False, description="an API token"))


def circle_token_scheme() -> Any:
    """CircleCI's header, declared for the OpenAPI document only: the route class checks."""
    return Depends(
        APIKeyHeader(
            name=CIRCLE_TOKEN_HEADER, auto_error=False, description="an API token, as CircleCI"
        )
    )


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
        "send an API token as 'Authorization: Bearer TOKEN'",
    )
