"""The webhook receivers, in process through the service app (issue 11 §6, §8): for each
provider a valid, wrong, missing, truncated and altered signature, a replayed delivery id, an
oversized body, an unknown event and another project's repository; and 100 deliveries at once
queue at most two fetches."""

from __future__ import annotations

import asyncio
import itertools
import json
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.host.events import RefUpdate
from repolink.http.service_app import create_service_app
from repolink.http.webhooks_in import MAX_BODY_BYTES, hook_path
from repolink.platform.fetch_queue import FetchQueue
from repolink.platform.webhook_providers import PROVIDERS
from repolink.settings import Settings
from repolink.signing import sign_body
from repolink.store import utcnow
from repolink.store.models.fetch_runs import FetchRun
from repolink.store.models.webhooks_in import WebhookDeliveryIn
from support.accountskit import FAST_HASHER, Account, make_account
from support.httpkit import serving_app
from support.platformkit import HostedRepos, Platform

pytestmark = pytest.mark.databases

with warnings.catch_warnings():
    # Starlette asks for another HTTP client library in its test client; httpx is ours.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PUSH_EVENTS = {
    "bitbucket": "repo:push",
    "bitbucket-server": "repo:refs_changed",
    "github": "push",
    "gitlab": "Push Hook",
    "generic": "push",
}
OTHER_EVENTS = {
    "bitbucket": "pullrequest:created",
    "bitbucket-server": "pr:opened",
    "github": "issues",
    "gitlab": "Merge Request Hook",
    "generic": "deploy",
}
EVENT_HEADERS = {
    "bitbucket": "X-Event-Key",
    "bitbucket-server": "X-Event-Key",
    "github": "X-GitHub-Event",
    "gitlab": "X-Gitlab-Event",
    "generic": "X-Repolink-Event",
}
DELIVERY_HEADERS = {
    "bitbucket": "X-Request-UUID",
    "bitbucket-server": "X-Request-Id",
    "github": "X-GitHub-Delivery",
    "gitlab": "X-Gitlab-Event-UUID",
    "generic": "X-Repolink-Delivery",
}
ALL = sorted(PROVIDERS)
HMAC_PROVIDERS = sorted(set(PROVIDERS) - {"gitlab"})


def payload(provider: str, url: str) -> bytes:
    """A push payload of ``provider`` for the repository at ``url`` (git@forge.example:…)."""
    path = url.split(":", 1)[1].removesuffix(".git")
    team, repo = path.split("/")
    bodies: dict[str, dict[str, Any]] = {
        "bitbucket": {
            "push": {"changes": [{"new": {"type": "branch", "name": "main"}}]},
            "repository": {
                "full_name": path,
                "links": {"html": {"href": f"https://forge.example/{path}"}},
            },
        },
        "bitbucket-server": {
            "eventKey": "repo:refs_changed",
            "repository": {"slug": repo, "project": {"key": team.upper()}},
        },
        "github": {
            "ref": "refs/heads/main",
            "commits": [{"id": "0" * 40, "message": "never trusted"}],
            "repository": {"ssh_url": url, "clone_url": f"https://forge.example/{path}.git"},
        },
        "gitlab": {"object_kind": "push", "project": {"git_ssh_url": url}},
        "generic": {"repository": url},
    }
    return json.dumps(bodies[provider]).encode()


def signature(provider: str, secret: str, body: bytes) -> str:
    return secret if PROVIDERS[provider].sends_secret else sign_body(secret.encode(), body)


def headers_for(
    provider: str,
    secret: str,
    body: bytes,
    *,
    event: str | None = None,
    delivery: str = "delivery-1",
    sign: str | None = None,
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADERS[provider]: event or PUSH_EVENTS[provider],
        DELIVERY_HEADERS[provider]: delivery,
    }
    header = PROVIDERS[provider].signature_header
    headers[header] = signature(provider, secret, body) if sign is None else sign
    return headers


@dataclass(frozen=True)
class Target:
    """A project of one test, connected to ``url``; ``other_url`` is another project's."""

    slug: str
    url: str
    other_url: str
    secret: str


@pytest.fixture(scope="module")
def application(
    tmp_path_factory: pytest.TempPathFactory, database_backend: str
) -> Iterator[Repolink]:
    # One store for the module: each test has projects of its own (the `target` fixture).
    data = tmp_path_factory.mktemp("webhooks-in") / "data"
    with Repolink(Settings(data_dir=data), password_hasher=FAST_HASHER) as app:
        app.projects.create_project("Quiet", slug="quiet")
        yield app


@pytest.fixture(scope="module")
def client(application: Repolink) -> Iterator[TestClient]:
    with TestClient(create_service_app(application)) as test_client:
        yield test_client


@pytest.fixture
def target(application: Repolink, request: pytest.FixtureRequest) -> Target:
    number = next(_NUMBERS)
    slug, other = f"app-{number}", f"other-{number}"
    url, other_url = f"git@forge.example:team/{slug}.git", f"git@forge.example:team/{other}.git"
    for name, connected_to in ((slug, url), (other, other_url)):
        application.projects.create_project(name.title(), slug=name)
        application.connections.save(name, connected_to)
    return Target(slug, url, other_url, application.webhooks_in.secret(slug).value)


_NUMBERS = itertools.count(1)


def post(
    client: TestClient, provider: str, body: bytes, headers: dict[str, str], project: str
) -> httpx.Response:
    return client.post(hook_path(provider, project), content=body, headers=headers)


def runs(application: Repolink, slug: str) -> int:
    return len(application.fetch_requests.history(slug, limit=500))


def outcomes(application: Repolink, slug: str) -> list[str]:
    return [d.outcome for d in reversed(application.webhooks_in.deliveries(slug, limit=200))]


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "webhook_signature_invalid"


# -- each provider ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ALL)
def test_a_valid_delivery_queues_a_fetch(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    answer = post(client, provider, body, headers_for(provider, target.secret, body), target.slug)
    assert answer.status_code == 202, answer.text
    received = answer.json()
    assert received["outcome"] == "queued"
    assert (received["provider"], received["delivery_id"]) == (provider, "delivery-1")
    [run] = application.fetch_requests.history(target.slug, limit=5)
    assert (received["fetch_id"], run.trigger) == (run.id, "webhook")


@pytest.mark.parametrize("provider", ALL)
def test_a_wrong_secret_is_refused(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    headers = headers_for(provider, target.secret + "x", body)
    assert_refused(post(client, provider, body, headers, target.slug))
    assert runs(application, target.slug) == 0


@pytest.mark.parametrize("provider", ALL)
def test_a_missing_signature_is_refused(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    headers = headers_for(provider, target.secret, body)
    del headers[PROVIDERS[provider].signature_header]
    assert_refused(post(client, provider, body, headers, target.slug))
    empty = headers_for(provider, target.secret, body, sign="")
    assert_refused(post(client, provider, body, empty, target.slug))
    assert runs(application, target.slug) == 0


@pytest.mark.parametrize("provider", ALL)
def test_a_truncated_signature_is_refused(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    truncated = signature(provider, target.secret, body)[:-1]
    headers = headers_for(provider, target.secret, body, sign=truncated)
    assert_refused(post(client, provider, body, headers, target.slug))
    assert runs(application, target.slug) == 0


@pytest.mark.parametrize("provider", ALL)
def test_one_byte_changed_in_the_signature_is_refused(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    good = signature(provider, target.secret, body)
    changed = good[:-1] + ("a" if good[-1] != "a" else "b")
    headers = headers_for(provider, target.secret, body, sign=changed)
    assert_refused(post(client, provider, body, headers, target.slug))
    assert runs(application, target.slug) == 0


@pytest.mark.parametrize("provider", HMAC_PROVIDERS)
def test_one_byte_changed_in_the_body_is_refused(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    headers = headers_for(provider, target.secret, body)
    # One byte of the repository's name: the body then names "apq-N" instead of "app-N".
    altered = body.replace(b"app-", b"apq-", 1)
    assert altered != body and len(altered) == len(body)
    assert_refused(post(client, provider, altered, headers, target.slug))
    assert runs(application, target.slug) == 0


@pytest.mark.parametrize("provider", ALL)
def test_a_replayed_delivery_id_is_ignored(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    headers = headers_for(provider, target.secret, body)
    assert post(client, provider, body, headers, target.slug).json()["outcome"] == "queued"
    again = post(client, provider, body, headers, target.slug)
    assert again.status_code == 202
    assert (again.json()["outcome"], again.json()["fetch_id"]) == ("replayed", None)
    assert outcomes(application, target.slug) == ["queued", "replayed"]
    assert runs(application, target.slug) == 1


@pytest.mark.parametrize("provider", ALL)
def test_an_oversized_body_is_refused_before_it_is_read(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url) + b" " * MAX_BODY_BYTES
    answer = post(client, provider, body, headers_for(provider, target.secret, body), target.slug)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"

    # Without a Content-Length: counted as it streams, cut off at the limit.
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    headers = headers_for(provider, target.secret, b"")
    streamed = client.post(hook_path(provider, target.slug), content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert outcomes(application, target.slug) == [] and runs(application, target.slug) == 0


@pytest.mark.parametrize("provider", ALL)
def test_a_body_of_exactly_the_limit_is_read(
    client: TestClient, target: Target, provider: str
) -> None:
    start = payload(provider, target.url)
    body = start + b" " * (MAX_BODY_BYTES - len(start))
    answer = post(client, provider, body, headers_for(provider, target.secret, body), target.slug)
    assert answer.status_code == 202 and answer.json()["outcome"] == "queued"


@pytest.mark.parametrize("provider", ALL)
def test_an_unknown_event_is_ignored(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    headers = headers_for(provider, target.secret, body, event=OTHER_EVENTS[provider])
    answer = post(client, provider, body, headers, target.slug)
    assert answer.status_code == 202
    assert answer.json()["outcome"] == "ignored_event"
    assert runs(application, target.slug) == 0


@pytest.mark.parametrize("provider", ALL)
def test_another_projects_repository_queues_nothing(
    client: TestClient, application: Repolink, target: Target, provider: str
) -> None:
    body = payload(provider, target.other_url)
    answer = post(client, provider, body, headers_for(provider, target.secret, body), target.slug)
    assert answer.status_code == 202
    assert answer.json()["outcome"] == "other_repository"
    other = target.slug.replace("app-", "other-")
    assert runs(application, target.slug) == 0 and runs(application, other) == 0


# -- answers that must not tell a stranger anything ------------------------------------------


@pytest.mark.parametrize("provider", ALL)
def test_an_unknown_project_answers_exactly_like_a_wrong_signature(
    client: TestClient, target: Target, provider: str
) -> None:
    body = payload(provider, target.url)
    good = headers_for(provider, target.secret, body)
    wrong = post(client, provider, body, headers_for(provider, "not-it", body), target.slug)
    unknown = post(client, provider, body, good, "nope")
    unsecured = post(client, provider, body, good, "quiet")
    invalid = post(client, provider, body, good, "A%20B")
    for answer in (unknown, unsecured, invalid):
        assert (answer.status_code, answer.json()) == (wrong.status_code, wrong.json())
        assert answer.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")


def test_a_project_without_a_secret_is_refused_and_its_admins_see_it(
    client: TestClient, application: Repolink
) -> None:
    application.projects.create_project("Unsecured", slug="unsecured")
    body = b"{}"
    headers = headers_for("github", "guess", body)
    assert_refused(post(client, "github", body, headers, "unsecured"))
    assert outcomes(application, "unsecured") == ["refused"]


def test_an_unknown_provider_is_not_found(client: TestClient, target: Target) -> None:
    answer = client.post(hook_path("gitea", target.slug), content=b"{}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "webhook_provider_unknown"


def test_a_signed_push_that_is_not_json_is_a_bad_request(
    client: TestClient, target: Target
) -> None:
    body = b"\x00not json"
    answer = post(client, "github", body, headers_for("github", target.secret, body), target.slug)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "webhook_payload_invalid"


def test_the_secret_never_appears_in_an_answer(client: TestClient, target: Target) -> None:
    body = payload("gitlab", target.url)
    secret = target.secret
    answers = [
        post(client, "gitlab", body, headers_for("gitlab", secret, body), target.slug),
        post(client, "gitlab", body, headers_for("gitlab", secret[:-1], body), target.slug),
        post(client, "github", b"x", headers_for("github", secret, b"x"), target.slug),
    ]
    assert [answer.status_code for answer in answers] == [202, 401, 400]
    assert all(secret not in answer.text for answer in answers)


def test_a_github_ping_is_answered_and_queues_nothing(
    client: TestClient, application: Repolink, target: Target
) -> None:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    headers = headers_for("github", target.secret, body, event="ping")
    answer = post(client, "github", body, headers, target.slug)
    assert (answer.status_code, answer.json()["outcome"]) == (202, "ping")
    assert runs(application, target.slug) == 0


# -- many at once ----------------------------------------------------------------------------


def test_a_hundred_deliveries_at_once_make_at_most_two_fetches(
    application: Repolink, target: Target
) -> None:
    """100 signed deliveries for one repository, concurrently, while the first fetch starts
    running halfway: every one is queued, and they make two runs — the one that ran and the
    one that waits — because a request joins the run that waits (contract 3)."""
    app = create_service_app(application)
    body = payload("github", target.url)
    queue = FetchQueue(application.store)

    async def deliver(client: httpx.AsyncClient, number: int) -> dict[str, Any]:
        headers = headers_for("github", target.secret, body, delivery=f"burst-{number}")
        answer = await client.post(hook_path("github", target.slug), content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        received: dict[str, Any] = answer.json()
        return received

    async def burst() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = await asyncio.gather(*(deliver(client, n) for n in range(50)))
            # A worker takes the waiting run once its gathering window is over: the fetch is
            # running now (the clock is moved past the window rather than waited out).
            after_window = utcnow() + timedelta(seconds=application.settings.webhook_gather + 1)
            claimed = await asyncio.to_thread(
                queue.claim_run, first[0]["fetch_id"], now=after_window
            )
            assert claimed is not None
            second = await asyncio.gather(*(deliver(client, n) for n in range(50, 100)))
            return [*first, *second]

    received = asyncio.run(burst())
    assert [r["outcome"] for r in received] == ["queued"] * 100
    fetch_ids = {r["fetch_id"] for r in received}
    assert len(fetch_ids) == runs(application, target.slug) == 2
    assert outcomes(application, target.slug).count("queued") == 100


def test_a_burst_from_threads_to_two_servers_on_one_database_leaves_two_runs(
    tmp_path: Path,
) -> None:
    """Two servers on one database (as two `repolink serve` processes share one), each with
    its own store and write turn, take 100 deliveries from 10 threads, a worker claiming the
    waiting run halfway: the fetch runs are one running and one waiting, every delivery's row
    is ``queued`` and names one of them — the first half the running one, the rest the other."""
    settings = Settings(data_dir=tmp_path / "data")
    url = "git@forge.example:team/app.git"
    with (
        Repolink(settings, password_hasher=FAST_HASHER) as one,
        Repolink(settings, password_hasher=FAST_HASHER) as two,
    ):
        one.projects.create_project("App", slug="app")
        one.connections.save("app", url)
        secret = one.webhooks_in.secret("app").value
        body = payload("github", url)

        def deliver(bases: tuple[str, str], numbers: range) -> list[int]:
            fetch_ids = []
            with httpx.Client() as client:
                for number in numbers:
                    headers = headers_for("github", secret, body, delivery=f"burst-{number}")
                    answer = client.post(
                        bases[number % 2] + hook_path("github", "app"),
                        content=body,
                        headers=headers,
                    )
                    assert answer.status_code == 202, answer.text
                    assert answer.json()["outcome"] == "queued"
                    fetch_ids.append(answer.json()["fetch_id"])
            return fetch_ids

        def burst(bases: tuple[str, str], first: int) -> list[int]:
            with ThreadPoolExecutor(max_workers=10) as pool:
                parts = pool.map(
                    lambda n: deliver(bases, range(first + n * 5, first + n * 5 + 5)), range(10)
                )
                return [fetch_id for part in parts for fetch_id in part]

        with (
            serving_app(create_service_app(one)) as base_one,
            serving_app(create_service_app(two)) as base_two,
        ):
            bases = (base_one, base_two)
            first = burst(bases, 0)
            after_window = utcnow() + timedelta(seconds=settings.webhook_gather + 1)
            assert FetchQueue(two.store).claim_run(first[0], now=after_window) is not None
            second = burst(bases, 50)

        with one.store.session() as session:
            runs = {row.id: row.status for row in session.scalars(select(FetchRun))}
            rows = list(session.scalars(select(WebhookDeliveryIn)))
    assert runs == {first[0]: "running", second[0]: "queued"}
    assert set(first) == {first[0]} and set(second) == {second[0]}
    assert len(rows) == 100
    assert {row.outcome for row in rows} == {"queued"}
    named = {row.delivery_id: int(row.fetch_run_id or 0) for row in rows}
    assert named == {f"burst-{n}": first[0] if n < 50 else second[0] for n in range(100)}


# -- the project's webhook settings (platform API) ------------------------------------------


@dataclass(frozen=True)
class People:
    admin: Account
    member: Account
    viewer: Account
    stranger: Account


@pytest.fixture(scope="module")
def people(application: Repolink) -> People:
    return People(*(make_account(application, name) for name in ("ada", "mia", "vic", "sam")))


@pytest.fixture
def members(application: Repolink, people: People, target: Target) -> People:
    """``people`` with their roles in the target project (``stranger``: none)."""
    for account, role in (
        (people.admin, Role.ADMIN),
        (people.member, Role.MEMBER),
        (people.viewer, Role.VIEWER),
    ):
        application.access.set_member(LOCAL_ADMIN, target.slug, account.principal.username, role)
    return people


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def settings_path(target: Target) -> str:
    return f"/api/v1/projects/{target.slug}/webhooks"


def audit_actions(application: Repolink, target: Target) -> list[str]:
    page = application.audit.entries(LOCAL_ADMIN, project=target.slug, limit=50)
    return [entry.action for entry in page.items if entry.action.startswith("webhook")]


def test_an_admin_sees_the_urls_the_secret_and_the_deliveries(
    client: TestClient, application: Repolink, target: Target, members: People
) -> None:
    body = payload("gitlab", target.url)
    post(client, "gitlab", body, headers_for("gitlab", target.secret, body), target.slug)
    answer = client.get(settings_path(target), headers=bearer(members.admin))
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["urls"]["github"] == f"http://testserver/hooks/github/{target.slug}"
    assert sorted(shown["urls"]) == ALL
    assert (shown["secret"], shown["secret_set"]) == (target.secret, True)
    assert answer.headers["cache-control"] == "no-store"
    [delivery] = shown["deliveries"]
    assert (delivery["provider"], delivery["event"], delivery["outcome"]) == (
        "gitlab",
        "Push Hook",
        "queued",
    )
    assert delivery["delivery_id"] == "delivery-1" and isinstance(delivery["fetch_id"], int)


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_members_and_viewers_see_everything_but_the_secret(
    client: TestClient, target: Target, members: People, who: str
) -> None:
    answer = client.get(settings_path(target), headers=bearer(getattr(members, who)))
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert (shown["secret"], shown["secret_set"]) == (None, True)
    assert target.secret not in answer.text
    assert len(shown["urls"]) == len(ALL)


def test_the_first_read_by_an_admin_makes_the_secret_and_audits_it(
    client: TestClient, application: Repolink, people: People
) -> None:
    application.projects.create_project("Fresh", slug="fresh-settings")
    application.access.set_member(LOCAL_ADMIN, "fresh-settings", "ada", Role.ADMIN)
    application.access.set_member(LOCAL_ADMIN, "fresh-settings", "mia", Role.MEMBER)
    path = "/api/v1/projects/fresh-settings/webhooks"
    before = client.get(path, headers=bearer(people.member)).json()
    assert (before["secret"], before["secret_set"]) == (None, False)
    first = client.get(path, headers=bearer(people.admin)).json()
    second = client.get(path, headers=bearer(people.admin)).json()
    assert first["secret"] == second["secret"] and first["secret"].startswith("rlwh_")
    entries = application.audit.entries(LOCAL_ADMIN, project="fresh-settings", limit=50).items
    made = [entry for entry in entries if entry.action == "webhook_secret.create"]
    assert [entry.actor for entry in made] == ["ada"]


def test_a_stranger_cannot_see_the_project_and_no_token_is_refused(
    client: TestClient, target: Target, members: People
) -> None:
    hidden = client.get(settings_path(target), headers=bearer(members.stranger))
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "project_not_found"
    assert client.get(settings_path(target)).status_code == 401
    rotate = client.post(settings_path(target) + "/secret", headers=bearer(members.stranger))
    assert rotate.status_code == 404
    assert client.post(settings_path(target) + "/secret").status_code == 401


def test_an_admin_regenerates_the_secret_and_the_old_one_stops_working(
    client: TestClient, application: Repolink, target: Target, members: People
) -> None:
    answer = client.post(settings_path(target) + "/secret", headers=bearer(members.admin))
    assert answer.status_code == 200, answer.text
    new = answer.json()["secret"]
    assert new != target.secret and new.startswith("rlwh_")
    assert answer.headers["cache-control"] == "no-store"
    body = payload("github", target.url)
    assert_refused(
        post(client, "github", body, headers_for("github", target.secret, body), target.slug)
    )
    accepted = post(client, "github", body, headers_for("github", new, body), target.slug)
    assert accepted.json()["outcome"] == "queued"
    assert audit_actions(application, target) == ["webhook_secret.rotate"]
    entries = application.audit.entries(LOCAL_ADMIN, project=target.slug, limit=50).items
    assert all(new not in str(entry.as_dict()) for entry in entries)


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_only_admins_regenerate(
    client: TestClient, application: Repolink, target: Target, members: People, who: str
) -> None:
    answer = client.post(settings_path(target) + "/secret", headers=bearer(getattr(members, who)))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "role_required"
    assert application.webhooks_in.secret(target.slug).value == target.secret


def test_the_settings_limit_is_checked(client: TestClient, target: Target, members: People) -> None:
    for limit in ("0", "201", "x"):
        answer = client.get(
            settings_path(target), params={"limit": limit}, headers=bearer(members.admin)
        )
        assert answer.status_code == 400, limit
        assert answer.json()["error"]["code"] == "invalid_request"


# -- the built-in host's own webhook, received by a platform on another server ---------------


def test_the_hosts_signed_push_webhook_queues_the_platforms_fetch(
    platform: Platform, hosted: HostedRepos
) -> None:
    """What the host sends (a signed Bitbucket-style ``repo:push``, with its SSH clone link)
    is what the ``bitbucket`` receiver reads: a push to team/app on one server queues the
    fetch of a project of another server connected to it, and none of one connected to
    team/other."""
    app = platform.app
    for slug, repo in (("remote", hosted.app), ("bystander", hosted.other)):
        platform.project(slug)
        app.connections.save(slug, repo.url())
    host_app = Repolink(hosted.host.settings, store=hosted.host.store)
    repository = host_app.host.get_repository("team", "app")
    tip = hosted.app.host_commits("main")[0]
    with serving_app(create_service_app(app)) as base:
        hooks = [
            host_app.hooks.add_hook(
                "team",
                "app",
                f"{base}{hook_path('bitbucket', slug)}",
                secret=app.webhooks_in.secret(slug).value,
            )
            for slug in ("remote", "bystander")
        ]

        async def push_and_deliver() -> None:
            worker = host_app.delivery_worker(
                ssh_url_base=f"ssh://git@127.0.0.1:{hosted.host.port}"
            )
            await worker.on_push(repository, [RefUpdate("refs/heads/main", None, tip)])
            counts = await worker.drain()
            assert (counts.delivered, counts.failed) == (2, 0)

        try:
            asyncio.run(push_and_deliver())
        finally:  # the host is the module's, shared by the [sqlite] and [postgresql] runs
            for hook in hooks:
                host_app.hooks.remove_hook("team", "app", hook.uuid)
    [delivery] = app.webhooks_in.deliveries("remote")
    assert (delivery.provider, delivery.event, delivery.outcome) == (
        "bitbucket",
        "repo:push",
        "queued",
    )
    assert [run.trigger for run in app.fetch_requests.history("remote", limit=5)] == ["webhook"]
    assert [d.outcome for d in app.webhooks_in.deliveries("bystander")] == ["other_repository"]
    assert app.fetch_requests.history("bystander", limit=5) == []
