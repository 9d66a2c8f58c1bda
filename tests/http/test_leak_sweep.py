"""The leak sweep of issue 11 §8 (DESIGN.md §5): after every operation of the service's OpenAPI
document has been driven — as a site admin and anonymously, with an empty body and with a body
whose every text field holds a private key, error paths included — no answer, no log line and
no argument list of a process repolink started holds any private key the store knows, nor any
16-character piece of its base64 body.

The one exception is the answer that asked for a generated key (``return_private_key``): it
is taken out of the sweep, and the key it carried is then looked for everywhere else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from repolink.keys import PrivateKey
from repolink.store.key_records import list_key_records, load_private_key
from support.apikit import ANONYMOUS, OWNER, ROOT, PlatformAPI, platform_api
from support.platformkit import HostedRepos, Platform, granted_key
from support.recording import RecordingRunner

PROJECT = "sweep"
GENERATED = "minted"
HOST_WORKSPACE = "acme"
PIECE = 16
METHOD_ORDER = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}


@pytest.fixture
def api(platform: Platform) -> Iterator[PlatformAPI]:
    yield from platform_api(platform.app, ssh_url_base="ssh://git@127.0.0.1:2222")


class Sweep:
    """Every text that left repolink during the sweep: answers, and argument lists."""

    def __init__(self, api: PlatformAPI) -> None:
        self.api = api
        self.texts: list[str] = []

    def send(self, caller: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.api.headers(caller), **kwargs.pop("headers", {})}
        response = self.api.client.request(method, path, headers=headers, **kwargs)
        self.texts.append(f"{response.status_code} {method} {path}\n{response.headers}\n")
        self.texts.append(response.text)
        return response


def openssh_text(key: PrivateKey) -> str:
    return key.to_openssh().decode()


def pieces(key: PrivateKey) -> set[str]:
    """16-character pieces of the key file's base64 body, less those the public key line has
    too (an OpenSSH private key file holds the public blob, which may be shown)."""
    body = "".join(line for line in openssh_text(key).splitlines() if not line.startswith("-"))
    public = key.public_key.openssh_line()
    return {body[i : i + PIECE] for i in range(len(body) - PIECE + 1)} - {
        public[i : i + PIECE] for i in range(len(public) - PIECE + 1)
    }


def body_for(
    schema: dict[str, Any], document: dict[str, Any], key_text: str, depth: int = 0
) -> Any:
    """A body of ``schema``'s shape whose every string is ``key_text``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return body_for(document["components"]["schemas"][name], document, key_text, depth)
    for choice in ("anyOf", "oneOf", "allOf"):
        if choice in schema:
            return body_for(schema[choice][0], document, key_text, depth)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {
            name: body_for(sub, document, key_text, depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [body_for(schema.get("items", {}), document, key_text, depth + 1)]
    if kind == "integer" or kind == "number":
        return 1
    if kind == "boolean":
        return True
    return key_text


# On SQLite and on PostgreSQL (issue 13 §4): the PostgreSQL store and its job backend are swept too.
@pytest.mark.databases
def test_no_answer_log_line_or_argv_holds_a_private_key(
    platform: Platform,
    hosted: HostedRepos,
    api: PlatformAPI,
    recording: RecordingRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sweep = Sweep(api)
    imported = granted_key(hosted.host, "app", PROJECT)
    key_text = openssh_text(imported)

    # A connected project with commits, an imported key, and one that was handed a generated key.
    api.ok(OWNER, "POST", "/projects", json={"name": "Sweep", "slug": PROJECT})
    api.ok(OWNER, "POST", "/projects", json={"name": "Minted", "slug": GENERATED})
    api.app.host.create_repository(HOST_WORKSPACE, PROJECT)
    url = hosted.app.url()
    answer = sweep.send(
        OWNER,
        "PUT",
        f"/api/v1/projects/{PROJECT}/repository",
        json={"url": url, "private_key": key_text},
    )
    assert answer.is_success, answer.text
    fetched = sweep.send(OWNER, "POST", f"/api/v1/projects/{PROJECT}/fetch?wait=true")
    assert fetched.status_code == 200, fetched.text
    minted = api.client.put(
        f"/api/v1/projects/{GENERATED}/repository",
        headers=api.headers(OWNER),
        json={"url": url, "generate": {"type": "ed25519"}, "return_private_key": True},
    )
    assert minted.is_success and "private_key" in minted.text, minted.text
    commits = sweep.send(ROOT, "GET", f"/api/v1/projects/{PROJECT}/commits").json()["items"]
    assert commits, "the sweep needs a fetched project"
    deploy = sweep.send(ROOT, "GET", f"/api/v1/projects/{PROJECT}/repository").json()

    values = {
        "slug": PROJECT,
        "project": PROJECT,
        "workspace": HOST_WORKSPACE,
        "sha": commits[0]["sha"],
        "username": "dev",
        "provider": "github",
        "fingerprint": quote(deploy["deploy_key"]["fingerprint_sha256"], safe=""),
        "uid": "{00000000-0000-0000-0000-000000000000}",
    }
    document = api.client.get("/api/v1/openapi.json").json()
    operations = sorted(
        (
            (METHOD_ORDER.get(method, 9), path, method, operation)
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if method in METHOD_ORDER
        ),
        key=lambda entry: entry[:3],
    )
    assert len(operations) > 20
    bad_key = key_text.replace("-----END", "")  # truncated: a named error, never an echo
    for _, template, method, operation in operations:
        path = re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "1"), template)
        schema = (
            operation.get("requestBody", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema")
        )
        bodies: list[Any] = [None]
        if schema is not None:
            bodies += [
                {},
                body_for(schema, document, key_text),
                body_for(schema, document, bad_key),
            ]
        for caller in (ROOT, ANONYMOUS):
            for body in bodies:
                kwargs = {} if body is None else {"json": body}
                response = sweep.send(caller, method.upper(), path, **kwargs)
                assert response.status_code < 500, (method, path, response.text)

    known = [imported]
    with api.app.store.session() as session:
        vault = api.app.vault()
        for record in list_key_records(session):
            if record.private_key_encrypted is not None:
                known.append(load_private_key(session, vault, record.id))
    minted_key = minted.json()["deploy_key"]
    assert minted_key  # its private half is among the stored keys, looked for everywhere

    texts = sweep.texts
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    texts += [" ".join(run.argv) for run in recording.records]
    haystack = "\n".join(texts)
    assert len(known) >= 2
    for key in known:
        assert openssh_text(key) not in haystack
        found = sorted(piece for piece in pieces(key) if piece in haystack)
        assert not found, (
            f"pieces of a private key ({key.public_key.sha256_fingerprint}): {found[:3]}"
        )
