"""The platform API's repository connection, fetches and doctor of a project, under
``/api/v1/projects/{slug}``.

- ``GET …/repository`` (viewer): URL, state, last error, deploy key — never a private key.
- ``PUT …/repository`` (admin): a URL and an imported or generated deploy key, validated as the
  CLI validates them (same error codes), the URL's host checked against the network policy
  (the server's own Git host always allowed); saved (replacing an earlier connection: 200,
  else 201) and the first fetch queued. ``return_private_key`` on a generate puts the new
  private key into that one answer, for download.
- ``DELETE …/repository`` (admin): connection, keys and mirror removed.
- ``POST …/fetch`` (member): a fetch queued (202), or with ``wait=true`` carried out and
  answered like the "Fetch repository" button (200: new commits, errors).
- ``GET …/fetches``, ``GET …/fetches/{id}`` (viewer): the fetch history.
- ``GET …/doctor`` (member): the checklist of ``repolink doctor``; it connects with the deploy
  key, so it takes the role that may fetch.

Changes to the connection are in the audit log, with no key material.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from repolink.accounts import key_audit
from repolink.auth.principal import Principal, Role
from repolink.http.auth import bearer_scheme, current_principal, principal_route_class
from repolink.http.v1_projects import API_PREFIX, ProjectSlug
from repolink.http.v1_schemas import (
    DoctorOut,
    ErrorOut,
    FetchDone,
    FetchRef,
    FetchRunList,
    FetchRunOut,
    RepositoryConnected,
    RepositoryOut,
    RepositoryPut,
    chosen_key,
    commit_out,
    doctor_out,
    fetch_run_out,
    repository_fields,
    repository_out,
)
from repolink.platform.targets import TargetPolicy, own_hosts
from repolink.store.ids import MAX_ROW_ID

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext
    from repolink.platform.connect import SavedConnection
    from repolink.platform.fetch_requests import FetchRunInfo

log = logging.getLogger(__name__)

# How long ``POST …/fetch?wait=true`` waits before it answers 202 with the run still going.
WAIT_TIMEOUT = 300.0
DEFAULT_HISTORY = 20
MAX_HISTORY = 200

Caller = Annotated[Principal, Depends(current_principal)]
RunId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the fetch run's id")]


def build_repository_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """The repository connection, fetches and doctor of a project."""
    access = application.access
    targets = TargetPolicy(
        application.settings.network_policy, own_hosts=own_hosts(context.ssh_url_base)
    )
    router = APIRouter(
        prefix=f"{API_PREFIX}/projects/{{slug}}",
        route_class=principal_route_class(application),
        dependencies=[bearer_scheme()],
        tags=["repository"],
    )

    @router.get("/repository", response_model=RepositoryOut)
    def get_repository(caller: Caller, slug: ProjectSlug) -> RepositoryOut:
        access.project(caller, slug, Role.VIEWER)
        return repository_out(application.connections.connection_info(slug))

    @router.put(
        "/repository",
        response_model=RepositoryConnected,
        status_code=201,
        responses={200: {"model": RepositoryConnected, "description": "replaced"}},
    )
    def put_repository(
        caller: Caller, slug: ProjectSlug, body: RepositoryPut, response: Response
    ) -> RepositoryConnected:
        """Connect the project (201), or replace its connection (200), then queue the first
        fetch. Give ``private_key`` (and ``passphrase``) or ``generate``."""
        access.project(caller, slug, Role.ADMIN)
        key = chosen_key(body.private_key, body.passphrase, body.generate)
        generation = body.generate or None
        saved: SavedConnection = application.connections.save(
            slug,
            body.url,
            key=key,
            key_type=generation.type if generation is not None else "ed25519",
            bits=generation.bits if generation is not None else None,
            replace=True,
            targets=targets,
        )
        key_audit.connection_saved(application.audit, caller, slug, saved)
        run = application.fetch_requests.request(slug, trigger="connect", actor=caller)
        # Read again: the connection as it is now that its fetch is queued (or running).
        connected = application.connections.connection_info(slug)
        private_key = None
        if body.return_private_key and saved.private_key is not None:
            private_key = saved.private_key.to_openssh().decode("ascii")
            # Neither a browser nor a proxy may keep the one answer that holds a private key.
            response.headers["Cache-Control"] = "no-store"
        if saved.replaced:
            response.status_code = 200
        return RepositoryConnected(
            **repository_fields(connected),
            fetch=FetchRef(id=run.id, state=run.state),
            private_key=private_key,
        )

    @router.delete("/repository", status_code=204)
    def delete_repository(caller: Caller, slug: ProjectSlug) -> Response:
        """Remove the connection, its deploy keys, its commit index and its mirror (admin)."""
        access.project(caller, slug, Role.ADMIN)
        application.connections.disconnect(slug)
        application.audit.record(caller, "connection.delete", project=slug)
        return Response(status_code=204)

    @router.post(
        "/fetch",
        status_code=202,
        response_model=FetchRunOut,
        responses={200: {"model": FetchDone, "description": "with wait=true: the fetch done"}},
    )
    def fetch(
        caller: Caller,
        slug: ProjectSlug,
        wait: Annotated[
            bool, Query(description="wait for the fetch and answer its new commits")
        ] = False,
    ) -> Any:
        """Queue a fetch (or join the one waiting already): 202 with the run. With
        ``wait=true``: 200 with its new commits (newest first, at most 100) and errors, once
        it has finished or failed (a transient failure is retried later all the same); 202
        with the run if it takes longer than the server waits."""
        access.project(caller, slug, Role.MEMBER)
        requests = application.fetch_requests
        if not wait:
            return fetch_run_out(requests.request(slug, trigger="api", actor=caller))
        run = requests.request_and_wait(slug, trigger="api", actor=caller, timeout=WAIT_TIMEOUT)
        # A run waiting to be retried after a transient failure has an answer too: its error.
        if not run.finished and run.error_code is None:
            return JSONResponse(fetch_run_out(run).model_dump(mode="json"), status_code=202)
        done = _fetch_done(application, slug, run)
        return JSONResponse(done.model_dump(mode="json"), status_code=200)

    @router.get("/fetches", response_model=FetchRunList)
    def list_fetches(
        caller: Caller,
        slug: ProjectSlug,
        limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = DEFAULT_HISTORY,
    ) -> FetchRunList:
        """The project's fetch runs, newest first."""
        access.project(caller, slug, Role.VIEWER)
        runs = application.fetch_requests.history(slug, limit=limit)
        return FetchRunList(items=[fetch_run_out(run) for run in runs])

    @router.get("/fetches/{run_id}", response_model=FetchRunOut)
    def get_fetch(caller: Caller, slug: ProjectSlug, run_id: RunId) -> FetchRunOut:
        access.project(caller, slug, Role.VIEWER)
        return fetch_run_out(application.fetch_requests.get(slug, run_id))

    @router.get("/doctor", response_model=DoctorOut)
    def doctor(caller: Caller, slug: ProjectSlug) -> DoctorOut:
        """Check URL, DNS, TCP, host key, authentication, repository access and refs, in
        order; the first failure names its fix, the checks after it are skipped."""
        access.project(caller, slug, Role.MEMBER)
        return doctor_out(application.doctor.check_project(slug))

    return router


def _fetch_done(application: Repolink, slug: str, run: FetchRunInfo) -> FetchDone:
    added = []
    if run.first_seq is not None and run.last_seq is not None:
        added = application.commits.added_commits(slug, run.first_seq, run.last_seq)
    errors = []
    if run.error_code is not None:
        connection = application.connections.connection_info(slug)
        # The connection keeps the fix of its last failure; it is this run's when codes agree.
        hint = connection.error_hint if connection.error_code == run.error_code else None
        errors.append(
            ErrorOut(code=run.error_code, message=run.error_message or "", hint=hint or "")
        )
    return FetchDone(
        fetch=fetch_run_out(run), new_commits=[commit_out(c) for c in added], errors=errors
    )
