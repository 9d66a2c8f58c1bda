"""The platform API's commit picker of a project, under ``/api/v1/projects/{slug}``.

``GET …/commits`` pages through the indexed commits newest first, by the keyset cursor of
:class:`~repolink.platform.commits.CommitService` (a page costs the same at any depth); ``ref``
narrows it to what a branch or tag reaches, ``search`` to a subject text or SHA prefix; hidden
commits are left out unless ``include_hidden``. ``GET …/commits/{sha}`` is one commit (hidden
or not), ``POST …/commits/{sha}/hide|unhide`` takes a member, ``GET …/refs`` lists branches
then tags with their tip commits. Reading takes a viewer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from repolink.auth.principal import Principal, Role
from repolink.http.auth import bearer_scheme, current_principal, principal_route_class
from repolink.http.page_cache import PageCache
from repolink.http.v1_projects import API_PREFIX, ProjectSlug
from repolink.http.v1_schemas import (
    CommitOut,
    CommitPageOut,
    RefList,
    commit_out,
    commit_page_out,
    ref_out,
)
from repolink.platform.commits import MAX_SEARCH_LENGTH
from repolink.platform.paging import DEFAULT_LIMIT, MAX_LIMIT

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext

log = logging.getLogger(__name__)

Caller = Annotated[Principal, Depends(current_principal)]
Sha = Annotated[
    str, Path(min_length=1, max_length=64, description="a commit's SHA, or a unique prefix")
]


def build_commits_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """Commits, one commit, hide and unhide, refs."""
    access = application.access
    commits = application.commits
    first_pages = PageCache()
    router = APIRouter(
        prefix=f"{API_PREFIX}/projects/{{slug}}",
        route_class=principal_route_class(application),
        dependencies=[bearer_scheme()],
        tags=["commits"],
    )

    def commit_page(
        caller: Principal,
        slug: str,
        ref: str | None,
        search: str | None,
        include_hidden: bool,
        cursor: str | None,
        limit: int,
    ) -> bytes:
        access.project(caller, slug, Role.VIEWER)
        # A first page of all refs, unsearched, is answered from the page cache while the
        # index version stays the same (see page_cache); any other page is read each time.
        key = None
        if ref is None and search is None and cursor is None:
            version = commits.index_version(slug)
            if version is not None:
                key = (version, include_hidden, limit)
                cached = first_pages.get(key)
                if cached is not None:
                    return cached
        page = commits.list_commits(
            slug,
            ref=ref,
            search=search,
            include_hidden=include_hidden,
            limit=limit,
            cursor=cursor,
        )
        body = commit_page_out(page).model_dump_json().encode()
        if key is not None:
            first_pages.put(key, body)
        return body

    @router.get("/commits", response_model=CommitPageOut)
    async def list_commits(
        caller: Caller,
        slug: ProjectSlug,
        ref: Annotated[
            str | None, Query(max_length=1024, description="a branch or tag (short or full)")
        ] = None,
        search: Annotated[
            str | None,
            Query(max_length=MAX_SEARCH_LENGTH, description="subject text or SHA prefix"),
        ] = None,
        include_hidden: bool = False,
        cursor: Annotated[
            str | None, Query(max_length=200, description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Response:
        """One page of commits, newest first; ``next_cursor`` continues it."""
        # The hottest route of the API: the check, the page and its JSON in one hop to a
        # worker thread, and the body answered as built (validated once, when it was made)
        # rather than validated and encoded again by FastAPI.
        body = await run_in_threadpool(
            commit_page, caller, slug, ref, search, include_hidden, cursor, limit
        )
        return Response(body, media_type="application/json")

    @router.get("/commits/{sha}", response_model=CommitOut)
    def get_commit(caller: Caller, slug: ProjectSlug, sha: Sha) -> CommitOut:
        access.project(caller, slug, Role.VIEWER)
        return commit_out(commits.get_commit(slug, sha))

    @router.post("/commits/{sha}/hide", response_model=CommitOut)
    def hide_commit(caller: Caller, slug: ProjectSlug, sha: Sha) -> CommitOut:
        """Leave the commit out of the commit list (unless include_hidden)."""
        return _set_hidden(application, caller, slug, sha, hidden=True)

    @router.post("/commits/{sha}/unhide", response_model=CommitOut)
    def unhide_commit(caller: Caller, slug: ProjectSlug, sha: Sha) -> CommitOut:
        return _set_hidden(application, caller, slug, sha, hidden=False)

    @router.get("/refs", response_model=RefList)
    def list_refs(caller: Caller, slug: ProjectSlug) -> RefList:
        """Every branch, then every tag, with its tip commit."""
        access.project(caller, slug, Role.VIEWER)
        return RefList(items=[ref_out(ref) for ref in commits.list_refs(slug)])

    return router


def _set_hidden(
    application: Repolink, caller: Principal, slug: str, sha: str, *, hidden: bool
) -> CommitOut:
    application.access.project(caller, slug, Role.MEMBER)
    commits = application.commits
    changed = (commits.hide_commits if hidden else commits.unhide_commits)(slug, [sha])
    application.audit.record(
        caller, "commit.hide" if hidden else "commit.unhide", project=slug, target=changed[0]
    )
    return commit_out(commits.get_commit(slug, changed[0]))
