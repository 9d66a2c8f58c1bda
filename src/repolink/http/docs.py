"""Where an API's documents are, said at its root, and a docs page that needs no other server.

FastAPI's own docs page loads Swagger UI from a CDN, which no machine here reaches (and which
would run a third party's script next to the API's token). This page is rendered on the server
from the OpenAPI document: the operations, each with its method, path and summary, and no
script, style sheet or image from anywhere — its Content-Security-Policy says so to the browser.
``/`` and the API root answer JSON naming the docs page, the OpenAPI document and the API.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "code{font-size:.95rem}table{border-collapse:collapse;width:100%}"
    "td,th{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}"
    # On a phone the table scrolls sideways in its own box (focusable, so by keyboard too),
    # and the page around it does not.
    ".operations{overflow-x:auto}.operations:focus-visible{outline:2px solid #1a5fb4}"
)


def install_docs(
    app: FastAPI,
    *,
    prefix: str,
    docs_url: str,
    openapi_url: str,
    links: Mapping[str, str] | None = None,
) -> None:
    """Add the docs page at ``docs_url``, and the documents' links at ``/`` and ``prefix``,
    with ``links`` (name → path) besides them."""
    all_links = {
        "docs": {"href": docs_url},
        "openapi": {"href": openapi_url},
        "api": {"href": prefix},
        **{name: {"href": path} for name, path in (links or {}).items()},
    }

    link_header = f'<{openapi_url}>; rel="service-desc", <{docs_url}>; rel="service-doc"'

    async def index() -> JSONResponse:
        return JSONResponse(
            {"name": app.title, "version": app.version, "links": all_links},
            headers={"Link": link_header},
        )

    async def docs_page() -> HTMLResponse:
        return HTMLResponse(
            render_docs(app.openapi(), openapi_url),
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
            },
        )

    for path in dict.fromkeys(("/", prefix)):
        app.add_api_route(path, index, methods=["GET"], include_in_schema=False)
    app.add_api_route(docs_url, docs_page, methods=["GET"], include_in_schema=False)


def render_docs(document: dict[str, Any], openapi_url: str) -> str:
    """The page for an OpenAPI ``document``; every text from it is escaped."""
    info = document.get("info", {})
    title = html.escape(str(info.get("title", "API")))
    rows = []
    for path, operations in document.get("paths", {}).items():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            tags = ", ".join(str(tag) for tag in operation.get("tags", ()))
            rows.append(
                "<tr>"
                f"<td><code>{method.upper()}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(str(operation.get('summary', '')))}</td>"
                f"<td>{html.escape(tags)}</td>"
                "</tr>"
            )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title} <small>{html.escape(str(info.get('version', '')))}</small></h1>"
        f"<p>{html.escape(str(info.get('description', '')))}</p>"
        f'<p>The whole description: <a href="{html.escape(openapi_url)}">OpenAPI document</a>.'
        "</p>"
        '<div class=operations role=region aria-label="Operations" tabindex=0>'
        "<table><thead><tr><th>method</th><th>path</th><th>what it does</th><th>about</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></body></html>"
    )
