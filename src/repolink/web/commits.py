"""Manage commits: a project's indexed commits newest first, a page at a time (the API's keyset
cursor), narrowed to a branch or tag and by a search, hidden ones on request; members hide and
unhide a commit with a form of its row (no script needed).

While the first page is open, ``static/commits.js`` listens to ``commits/version.json`` — the
commit index's version, :meth:`~repolink.platform.commits.CommitService.index_version`, one
small read — as an event stream (:mod:`repolink.web.live`: sent again whenever it moves, through
whichever API process the push, fetch or hide came) or, where the stream fails, polls it; when
it moved it reads the page again and swaps its rows in, so new commits appear without a reload.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import JSONResponse, Response

from repolink.auth.principal import Principal, Role
from repolink.errors import RepolinkError
from repolink.platform.commits import MAX_SEARCH_LENGTH, CommitPage, RefInfo
from repolink.web import live, paths
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit
from repolink.web.projects import COMMITS, open_project

log = logging.getLogger(__name__)

PAGE_SIZE = 50
# Which control of the filter form each listing error is shown beside.
FILTER_FIELDS = {
    "ref_not_found": "ref",
    "ref_invalid": "ref",
    "search_invalid": "search",
    "cursor_invalid": "_form",
}
# Errors of the listing that leave the page standing (the filter is wrong, or there is
# nothing to list yet) rather than being the answer.
_SHOWN_ON_PAGE = ("not_connected", "connection_not_found", "mirror_missing")


def commits_url(
    slug: str, *, ref: str = "", search: str = "", hidden: bool = False, cursor: str = ""
) -> str:
    """The Manage commits page with its filters (empty ones left out)."""
    query = {
        key: value
        for key, value in (
            ("ref", ref),
            ("search", search),
            ("hidden", "1" if hidden else ""),
            ("cursor", cursor),
        )
        if value
    }
    base = paths.project(slug, "commits")
    return f"{base}?{urlencode(query)}" if query else base


def build_commit_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = COMMITS.route

    @router.get(base, include_in_schema=False)
    async def commits(
        request: Request,
        slug: str,
        ref: str = Query("", max_length=1024),
        search: str = Query("", max_length=MAX_SEARCH_LENGTH),
        hidden: str = Query("", max_length=8),
        cursor: str = Query("", max_length=200),
    ) -> Response:
        return await show(
            request,
            slug,
            ref=ref.strip(),
            search=search.strip(),
            hidden=hidden == "1",
            cursor=cursor,
        )

    async def show(
        request: Request,
        slug: str,
        *,
        ref: str,
        search: str,
        hidden: bool,
        cursor: str,
        action_errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        opened = await open_project(kit, request, slug, COMMITS.role)
        project, role = opened.project, opened.role
        errors = FormErrors()
        page: CommitPage | None = None
        refs: list[RefInfo] = []
        version: str | None = None
        try:
            version = await kit.call(kit.app.commits.index_version, project.slug)
            if version is not None:
                refs = await kit.call(kit.app.commits.list_refs, project.slug)
                page = await kit.call(
                    kit.app.commits.list_commits,
                    project.slug,
                    ref=ref or None,
                    search=search or None,
                    include_hidden=hidden,
                    limit=PAGE_SIZE,
                    cursor=cursor or None,
                )
        except RepolinkError as exc:
            if exc.code == "project_not_found":
                raise
            errors.add(exc, FILTER_FIELDS)
            status = kit.status_of(exc) if exc.code not in _SHOWN_ON_PAGE else status

        def url(at: str = "") -> str:
            return commits_url(project.slug, ref=ref, search=search, hidden=hidden, cursor=at)

        return kit.page(
            request,
            "projects/commits.html",
            title=f"Commits · {project.name}",
            status=status,
            **opened.layout,
            connected=version is not None,
            version=version or "",
            refs=refs,
            page=page,
            filters={"ref": ref, "search": search, "hidden": hidden},
            first_page=not cursor,
            can_hide=role.allows(Role.MEMBER),
            errors=errors,
            action_errors=action_errors or FormErrors(),
            next_url=url(page.next_cursor) if page is not None and page.next_cursor else "",
            newest_url=url() if cursor else "",
            back=url(cursor),
            version_url=paths.project(project.slug, "commits", "version.json"),
        )

    @router.get(f"{base}/version.json", include_in_schema=False)
    async def version(request: Request, slug: str) -> Response:
        """The commit index's version, for the page's script to notice a change; asked for
        ``text/event-stream``, sent again each time it moves (:mod:`repolink.web.live`)."""
        principal = kit.principal(request)
        project = await kit.call(kit.app.access.project, principal, slug, COMMITS.role)

        async def read() -> dict[str, str]:
            await kit.call(kit.app.access.project, principal, project.slug, COMMITS.role)
            current = await kit.call(kit.app.commits.index_version, project.slug)
            return {"version": current or ""}

        if live.wants_stream(request):
            return live.event_stream(request, kit.app.changes, project.id, "version", read)
        return JSONResponse(await read())

    async def set_hidden(
        request: Request, slug: str, sha: str, back: str, *, hidden: bool
    ) -> Response:
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.MEMBER)
        target = back if back.startswith(paths.project(slug, "commits")) else ""
        target = paths.safe_next(target) if target else commits_url(slug)
        try:
            changed = await kit.call(_hide if hidden else _unhide, kit, principal, slug, sha)
        except RepolinkError as exc:
            if exc.code == "project_not_found":
                raise
            errors = FormErrors()
            errors.add(exc)
            return await show(
                request,
                slug,
                ref="",
                search="",
                hidden=True,
                cursor="",
                action_errors=errors,
                status=kit.status_of(exc),
            )
        verb = "hidden" if hidden else "shown again"
        return kit.redirect(target, notice=f"Commit {changed[:10]} is {verb}.")

    @router.post(f"{base}/{{sha}}/hide", include_in_schema=False)
    async def hide(request: Request, slug: str, sha: str, back: str = Form("")) -> Response:
        return await set_hidden(request, slug, sha, back, hidden=True)

    @router.post(f"{base}/{{sha}}/unhide", include_in_schema=False)
    async def unhide(request: Request, slug: str, sha: str, back: str = Form("")) -> Response:
        return await set_hidden(request, slug, sha, back, hidden=False)

    return router


def _hide(kit: PageKit, principal: Principal, slug: str, sha: str) -> str:
    return _set_hidden(kit, principal, slug, sha, hidden=True)


def _unhide(kit: PageKit, principal: Principal, slug: str, sha: str) -> str:
    return _set_hidden(kit, principal, slug, sha, hidden=False)


def _set_hidden(kit: PageKit, principal: Principal, slug: str, sha: str, *, hidden: bool) -> str:
    # As the API does: the commits service changes it, the audit log says who did.
    commits = kit.app.commits
    changed = (commits.hide_commits if hidden else commits.unhide_commits)(slug, [sha[:64]])
    kit.app.audit.record(
        principal, "commit.hide" if hidden else "commit.unhide", project=slug, target=changed[0]
    )
    return changed[0]
