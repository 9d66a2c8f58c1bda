"""Create execution: the dialog of the Valohai article, which picks the commit an execution
would run. Until executions exist it only picks one: the dropdown lists the project's commits
newest first (hidden ones left out, as the API's picker does), narrowed to a branch or tag, and
the picked commit's details — SHA, subject, author, time, refs — are shown.

A GET form (works without a script): ``?ref=`` narrows the dropdown, ``?commit=`` shows one
commit. ``static/executions.js`` shows the details of the option picked at once, from the
``data-`` attributes each option carries.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from repolink.errors import RepolinkError
from repolink.platform.commits import CommitInfo, CommitPage, RefInfo
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit
from repolink.web.projects import EXECUTIONS, open_project

log = logging.getLogger(__name__)

DROPDOWN_SIZE = 100
# Which control each error is shown beside.
FIELDS = {
    "ref_not_found": "ref",
    "commit_not_found": "commit",
    "commit_sha_invalid": "commit",
    "commit_ambiguous": "commit",
}


def build_execution_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)

    @router.get(EXECUTIONS.route, include_in_schema=False)
    async def new_execution(
        request: Request,
        slug: str,
        ref: str = Query("", max_length=1024),
        commit: str = Query("", max_length=64),
    ) -> Response:
        opened = await open_project(kit, request, slug, EXECUTIONS.role)
        project = opened.project
        errors = FormErrors()
        status = 200
        refs: list[RefInfo] = []
        page: CommitPage | None = None
        picked: CommitInfo | None = None
        connected = await kit.call(kit.app.commits.index_version, project.slug) is not None
        if connected:
            try:
                refs = await kit.call(kit.app.commits.list_refs, project.slug)
                page = await kit.call(
                    kit.app.commits.list_commits,
                    project.slug,
                    ref=ref.strip() or None,
                    limit=DROPDOWN_SIZE,
                )
                if commit.strip():
                    picked = await kit.call(
                        kit.app.commits.get_commit, project.slug, commit.strip()
                    )
            except RepolinkError as exc:
                if exc.code == "project_not_found":
                    raise
                errors.add(exc, FIELDS)
                status = kit.status_of(exc)
        return kit.page(
            request,
            "projects/execution_new.html",
            title=f"Create execution · {project.name}",
            status=status,
            **opened.layout,
            connected=connected,
            refs=refs,
            commits=page.commits if page is not None else [],
            ref=ref.strip(),
            picked=picked,
            errors=errors,
        )

    return router
