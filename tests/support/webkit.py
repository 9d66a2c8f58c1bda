"""The web pages in process: the service app in FastAPI's ``TestClient`` (real routing, real
sessions, real CSRF checks, no network), as one browser with its cookie jar.

:class:`PageClient` sends ``Origin`` with every form (as a browser does), reads a page's CSRF
token out of its form and signs in through the sign-in form itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from repolink.app import Repolink
from repolink.http.service_app import create_service_app
from support.accountskit import PASSWORD

ORIGIN = "http://testserver"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _TOKEN.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class PageClient:
    app: Repolink
    client: TestClient
    origin: str = ORIGIN

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, follow_redirects=False, **kwargs)

    def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        token_from: str | None = None,
        origin: str | None = "",
        **kwargs: Any,
    ) -> httpx.Response:
        """POST a form to ``path``; with ``token_from`` (a page's path) its CSRF token goes
        with it, as the form on that page would send it. ``origin``: the ``Origin`` header
        (default: this server's; ``None``: none sent)."""
        form = dict(data or {})
        if token_from is not None:
            form["csrf_token"] = csrf_token(self.get(token_from).text)
        headers = dict(kwargs.pop("headers", {}))
        if origin is not None:
            headers["Origin"] = origin or self.origin
        return self.client.post(path, data=form, headers=headers, follow_redirects=False, **kwargs)

    def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.post(
            "/ui/signin",
            {"username": username, "password": password},
            token_from="/ui/signin",
        )


@contextmanager
def page_client(
    application: Repolink, *, origin: str = ORIGIN, peer: tuple[str, int] | None = None
) -> Iterator[PageClient]:
    """A browser of the service app's pages at ``origin`` (an https one sends Secure
    cookies back), connecting from ``peer`` (default: the test client's ``testclient``)."""
    options = {"client": peer} if peer is not None else {}
    with TestClient(create_service_app(application), base_url=origin, **options) as client:
        yield PageClient(application, client, origin)


@contextmanager
def signed_in_pages(application: Repolink, username: str) -> Iterator[PageClient]:
    """A browser signed in as ``username`` (a user of :func:`support.accountskit.make_account`)."""
    with page_client(application) as pages:
        response = pages.sign_in(username)
        assert response.status_code == 303, response.text
        yield pages


@contextmanager
def http_signed_in(
    base_url: str, username: str, password: str = PASSWORD
) -> Iterator[httpx.Client]:
    """An HTTP client of a real server at ``base_url`` (its cookie jar a browser's), signed in
    as ``username`` through the sign-in form."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=60) as client:
        form = {"username": username, "password": password}
        form["csrf_token"] = csrf_token(client.get("/ui/signin").text)
        answer = client.post("/ui/signin", data=form, headers={"Origin": base_url})
        assert answer.status_code == 303, answer.text
        yield client


def stream_events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """The server-sent events of a streaming ``response``: (event name, its JSON data)."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data += line.partition(":")[2].strip()
        elif not line and data:
            yield name, json.loads(data)
            name, data = "message", ""


EVENT_STREAM = {"Accept": "text/event-stream"}
