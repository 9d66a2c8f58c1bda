"""A project's audit log page (in process): its admins read it newest first, a page at a time;
a viewer gets the 403 page, a stranger the 404; no key material on it."""

from __future__ import annotations

import re

import pytest

from repolink.app import Repolink
from repolink.web import audit as audit_pages
from support.accountskit import make_account
from support.webkit import signed_in_pages

PAGE = "/ui/projects/acme/settings/audit"


@pytest.fixture
def project(app: Repolink) -> Repolink:
    owner = make_account(app, "owner")
    make_account(app, "watcher")
    make_account(app, "stranger")
    app.access.create_project(owner.principal, "Acme", slug="acme")
    with signed_in_pages(app, "owner") as pages:
        added = pages.post(
            "/ui/projects/acme/members",
            {"username": "watcher", "role": "viewer"},
            token_from="/ui/projects/acme/members",
        )
        assert added.status_code == 303
    app.audit.record(owner.principal, "connection.save", project="acme", target="acme")
    return app


def test_admins_read_it_newest_first(project: Repolink) -> None:
    with signed_in_pages(project, "owner") as pages:
        page = pages.get(PAGE)
    assert page.status_code == 200
    actions = re.findall(r'<th scope="row"><code>([a-z_.]+)</code></th>', page.text)
    assert actions[0] == "connection.save" and actions[-1] == "project.create"
    assert "owner" in page.text and "<time datetime=" in page.text


def test_older_entries_by_the_cursor(project: Repolink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_pages, "PAGE_SIZE", 1)
    seen: list[str] = []
    with signed_in_pages(project, "owner") as pages:
        path = PAGE
        while True:
            html = pages.get(path).text
            seen += re.findall(r'<tr id="audit-(\d+)"', html)
            found = re.search(r'<a href="([^"]+)" rel="next">Older entries</a>', html)
            if found is None:
                break
            path = found.group(1)
            assert "Newest entries" in pages.get(path).text
    assert len(seen) >= 3 and seen == sorted(seen, key=int, reverse=True)


def test_a_viewer_is_refused_and_a_stranger_gets_404(project: Repolink) -> None:
    with signed_in_pages(project, "watcher") as pages:
        refused = pages.get(PAGE)
        assert refused.status_code == 403 and "role_required" in refused.text
        assert "Audit log" not in pages.get("/ui/projects/acme").text
    with signed_in_pages(project, "stranger") as pages:
        assert pages.get(PAGE).status_code == 404
