"""What an API's OpenAPI document says about errors: what the API really answers.

FastAPI documents a ``422 Validation Error`` of its own shape on every operation that takes
input, while repolink answers request validation with 400 and every error in the one body of
:mod:`repolink.http.errors`. A client generated from the document, or a property-based run over
it, would otherwise trust a status and a shape that never come. Every operation documents:

- ``400`` (``invalid_request`` and every :class:`~repolink.errors.InvalidInput`) where FastAPI
  put its 422, and
- ``default``: any other error status (401, 403, 404, 409, 413, 503 …), all in the one shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "error": {
            "type": "object",
            "required": ["code", "message", "hint"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "what is wrong, one line"},
                "hint": {"type": "string", "description": "how to fix it"},
            },
        },
    },
}
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def document_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document describe the errors it answers (built once, cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_error_responses(document)
        return app.openapi_schema

    replace: Callable[[], dict[str, Any]] = openapi
    app.openapi = replace  # type: ignore[method-assign]


def with_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with FastAPI's 422 replaced by our 400 and a ``default`` error answer."""
    for operations in document.get("paths", {}).values():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None:
                responses["400"] = _error_response("the request is invalid")
            responses.setdefault("default", _error_response("an error, in the one error shape"))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    return document


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}
