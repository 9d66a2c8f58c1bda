"""The one place where errors become HTTP answers, for every FastAPI app repolink builds.

Every error body has one shape, Bitbucket's error envelope with our stable code in it::

    {"type": "error", "error": {"code": "...", "message": "...", "hint": "..."}}

A :class:`RepolinkError` answers with the status :data:`HTTP_STATUSES` gives its class (the
nearest one listed) and its own code, message and hint. Request validation failures answer
400 ``invalid_request`` naming the fields at fault but never their values (a value may be a
private key). Unknown routes and methods answer in the same shape. Anything unexpected answers
500 ``internal_error`` with no detail at all; the exception goes to the log, never to the
client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from repolink.errors import (
    Conflict,
    DuplicateKey,
    GitError,
    HostAPIError,
    HostStorageError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    RepolinkError,
    StoreError,
    Unauthorized,
)
from repolink.logsafe import escaped

log = logging.getLogger(__name__)

# How many validation problems one 400 answer names; the rest are counted, not listed.
MAX_LISTED_PROBLEMS = 5
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})

# The one table from the error tree to HTTP statuses; the most specific class listed wins.
HTTP_STATUSES: dict[type[RepolinkError], int] = {
    InvalidInput: 400,
    NotFound: 404,
    # A conflict by nature, but Bitbucket Cloud answers 400 for a duplicate deploy key, and
    # clients written against it check for 400.
    DuplicateKey: 400,
    Conflict: 409,
    Unauthorized: 401,
    RateLimited: 429,
    PermissionDenied: 403,
    HostAPIError: 502,
    GitError: 502,
    # The database is down or not migrated, the shared storage not mounted: the server cannot
    # serve, the request was fine.
    StoreError: 503,
    HostStorageError: 503,
    RepolinkError: 500,
}

# Statuses Starlette raises by itself (routing, method matching), with our code for each.
_HTTP_CODES: dict[int, tuple[str, str, str]] = {
    400: (
        "invalid_request",
        "the request body cannot be read",
        "send a JSON body of at most the documented size",
    ),
    404: (
        "not_found",
        "there is nothing at this address",
        "check the path against the API's OpenAPI document",
    ),
    405: (
        "method_not_allowed",
        "this method is not allowed on this address",
        "check the method against the API's OpenAPI document",
    ),
    413: (
        "request_too_large",
        "the request body is too large",
        "send a smaller body",
    ),
}


def http_status_of(error: RepolinkError) -> int:
    """The HTTP status for ``error``: that of the nearest class in :data:`HTTP_STATUSES`."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUSES:
            return HTTP_STATUSES[cls]
    return 500


def error_body(code: str, message: str, hint: str = "") -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"type": "error", "error": {"code": code, "message": message, "hint": hint}}


def error_response(
    status_code: int,
    code: str,
    message: str,
    hint: str = "",
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, hint), status_code=status_code, headers=dict(headers or {})
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error ``app`` can produce answer in the shape above."""
    app.add_exception_handler(RepolinkError, _repolink_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _repolink_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RepolinkError)
    status = http_status_of(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, escaped(request.url.path), exc.one_line())
    # RFC 6750: a 401 names the scheme it wants; it says nothing about what was wrong.
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, exc.code, exc.message, exc.hint, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        400,
        "invalid_request",
        describe_validation_problems(exc.errors()),
        "check the request against the API's OpenAPI document",
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, message, hint = _HTTP_CODES.get(
        exc.status_code,
        (f"http_{exc.status_code}", "the request cannot be answered", ""),
    )
    headers = dict(exc.headers or {})
    documented = allowed_methods(request) if exc.status_code == 405 else []
    if documented:
        # Starlette names the methods of the first route whose path matched; a path served
        # by several routes (one per method) allows the methods of all of them.
        headers["Allow"] = ", ".join(documented)
    return error_response(exc.status_code, code, message, hint, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method the app's OpenAPI document lists for the request's path."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if _template_pattern(template).fullmatch(path):
            methods.update(method.upper() for method in operations if method in _METHODS)
    return sorted(methods)


def _template_pattern(template: str) -> re.Pattern[str]:
    # `{name}` matches one path segment, as the routes' own converters do by default.
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed unexpectedly", request.method, escaped(request.url.path), exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "the server failed to answer this request",
        "retry later; if it persists, report it to the operator of this server",
    )


def describe_validation_problems(problems: Sequence[Any]) -> str:
    """``invalid request: body.key: Field required; …`` — locations and reasons, no values.

    Pydantic's ``msg`` texts describe the expectation ("Input should be a valid integer"),
    never the input; the ``input`` and ``ctx`` entries, which may hold it, are not read.
    """
    parts: list[str] = []
    for problem in problems[:MAX_LISTED_PROBLEMS]:
        if not isinstance(problem, Mapping):
            continue
        location = ".".join(str(item) for item in problem.get("loc", ()) if _is_name(item))
        reason = str(problem.get("msg", "is invalid"))
        parts.append(f"{location}: {reason}" if location else reason)
    if len(problems) > MAX_LISTED_PROBLEMS:
        parts.append(f"and {len(problems) - MAX_LISTED_PROBLEMS} more")
    return "invalid request: " + ("; ".join(parts) if parts else "the request is malformed")


def _is_name(item: object) -> bool:
    # Locations hold field names and list positions; a short plain token is safe to show.
    if isinstance(item, int):
        return True
    return isinstance(item, str) and len(item) <= 64 and item.replace("_", "").isalnum()
