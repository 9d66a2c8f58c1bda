"""Where the API's documents are (issue 10 §1.16), and a docs page with no asset from a CDN
(§3.12): nothing on it is loaded from anywhere but this server."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.http.docs import render_docs
from repolink.http.host_api import API_PREFIX, create_host_api
from repolink.settings import Settings

with warnings.catch_warnings():
    # Starlette asks for another HTTP client library in its test client; httpx is ours.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# Every place an HTML page names another resource.
REFERENCE = re.compile(r"""(?:src|href|action|srcset|data)\s*=\s*["']?([^"'\s>]+)|url\(([^)]*)\)""")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    application = Repolink(Settings(data_dir=tmp_path / "data"))
    with application, TestClient(create_host_api(application)) as test_client:
        yield test_client


@pytest.mark.parametrize("root", ["/", API_PREFIX])
def test_the_roots_say_where_the_documents_are(client: TestClient, root: str) -> None:
    answer = client.get(root)
    assert answer.status_code == 200, answer.text
    links = answer.json()["links"]
    assert links == {
        "docs": {"href": f"{API_PREFIX}/docs"},
        "openapi": {"href": f"{API_PREFIX}/openapi.json"},
        "api": {"href": API_PREFIX},
    }
    assert 'rel="service-desc"' in answer.headers["link"]
    assert client.get(links["openapi"]["href"]).json()["paths"]
    assert client.get(links["docs"]["href"]).status_code == 200


def test_the_docs_page_loads_nothing_from_elsewhere(client: TestClient) -> None:
    answer = client.get(f"{API_PREFIX}/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    page = answer.text
    assert "<script" not in page.lower()
    references = [next(filter(None, match)) for match in REFERENCE.findall(page)]
    assert references == [f"{API_PREFIX}/openapi.json"]
    assert not re.search(r"https?:|//[a-z]", "".join(references))
    # It documents the operations.
    paths = client.get(f"{API_PREFIX}/openapi.json").json()["paths"]
    for path in paths:
        assert path in page


def test_the_docs_page_escapes_what_the_document_says() -> None:
    page = render_docs(
        {
            "info": {"title": "<script>x</script>", "description": '"><img src=//evil>'},
            "paths": {"/a/<b>": {"get": {"summary": "<iframe>", "tags": ["<t>"]}}},
        },
        "/openapi.json",
    )
    assert "<script>" not in page and "<img" not in page and "<iframe>" not in page
    assert "&lt;script&gt;" in page
