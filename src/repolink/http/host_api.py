"""The built-in host's HTTP API, shaped like Bitbucket Cloud's 2.0 API under ``/host/api/2.0``.

Same paths, field names and status codes as Bitbucket where Bitbucket has them, so client code
written for one serves both: workspaces, repositories, deploy keys (our access keys), workspace
SSH keys (our account keys) and webhooks. Clients navigate as on Bitbucket: objects carry
``links`` with absolute hrefs (:mod:`repolink.http.host_links`) and pages a ``next`` URL.
Every route calls :class:`HostService` or :class:`HookService`; nothing here decides anything.
The shapes are in :mod:`repolink.http.host_schemas`.

Every route needs the API token of a site admin (``Authorization: Bearer TOKEN``), checked
before the body is read (:mod:`repolink.http.auth`): the settings' admin token, an owner-less
host admin token (``rlh_``) or a site admin user's token. The token of a user who is no site
admin gets 403 ``site_admin_required``: the host API is one, well-known, operator's API, so
there is nothing for a 404 to hide, and a 403 tells the caller their token is not the one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.routing import APIRoute

from repolink.errors import ValidationError
from repolink.host.hooks import HookService
from repolink.host.info import RepositoryInfo
from repolink.host.service import HostService
from repolink.http.app import create_app
from repolink.http.auth import bearer_scheme, principal_route_class
from repolink.http.host_links import API_PREFIX, HostLinks, host_links
from repolink.http.host_schemas import (
    MAX_BODY_BYTES,
    DeliveryOut,
    DeployKeyCreate,
    DeployKeyOut,
    DeployKeyUpdate,
    HookCreate,
    HookOut,
    RepositoryCreate,
    RepositoryOut,
    SshKeyCreate,
    SshKeyOut,
    WorkspaceAccessOut,
    WorkspaceOut,
    delivery_out,
    deploy_key_out,
    hook_out,
    repository_out,
    ssh_key_out,
    workspace_access_out,
    workspace_out,
)
from repolink.http.pagination import (
    DEFAULT_PAGELEN,
    Page,
    PageLength,
    PageNumber,
    paginate,
    paginate_converted,
)
from repolink.store.ids import MAX_ROW_ID

if TYPE_CHECKING:
    from repolink.app import Repolink

log = logging.getLogger(__name__)

__all__ = ["API_PREFIX", "build_host_router", "create_host_api"]


Workspace = Annotated[str, Path(max_length=200, description="workspace name")]
Slug = Annotated[str, Path(max_length=200, description="repository slug")]
KeyId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
HookId = Annotated[str, Path(max_length=64, description="the hook's uuid, with or without {}")]
Links = Annotated[HostLinks, Depends(host_links)]
# Bitbucket's filters of the caller's own repositories and workspaces. Every caller of this API
# administers the whole host, so each role selects everything the caller may see.
RepositoryRole = Annotated[
    Literal["member", "contributor", "admin", "owner"] | None,
    Query(description="Bitbucket's filter by the caller's role; here every role sees all"),
]
WorkspaceRole = Annotated[
    Literal["member", "collaborator", "owner"] | None,
    Query(description="Bitbucket's filter by the caller's role; here every role sees all"),
]


# -- the app --------------------------------------------------------------------------------


def create_host_api(application: Repolink, *, ssh_url_base: str | None = None) -> FastAPI:
    """The host API as an app of its own (``repolink host serve`` runs it on uvicorn), its
    services from the application. ``ssh_url_base`` (``ssh://git@host:2222``) makes
    repositories carry their SSH clone link.
    """
    app = create_app(
        title="repolink host API",
        description="Bitbucket Cloud-shaped API of repolink's built-in Git host.",
        prefix=API_PREFIX,
        max_body_bytes=MAX_BODY_BYTES,
    )
    app.include_router(build_host_router(application, ssh_url_base=ssh_url_base))
    return app


def build_host_router(application: Repolink, *, ssh_url_base: str | None = None) -> APIRouter:
    """Every route of the host API, under ``/host/api/2.0``, each for site admins only."""
    service, hooks = application.host, application.hooks
    # Every sub-router is built with this route class: an included route keeps its own class.
    route_class = principal_route_class(application, require=application.access.require_site_admin)
    router = APIRouter(prefix=API_PREFIX, route_class=route_class, dependencies=[bearer_scheme()])
    router.include_router(_workspace_routes(route_class, service))
    router.include_router(_repository_routes(route_class, service, ssh_url_base))
    router.include_router(_deploy_key_routes(route_class, service))
    router.include_router(_ssh_key_routes(route_class, service))
    router.include_router(_hook_routes(route_class, hooks))
    return router


# -- routes ---------------------------------------------------------------------------------


def _workspace_routes(route_class: type[APIRoute], service: HostService) -> APIRouter:
    router = APIRouter(route_class=route_class, tags=["workspaces"])

    @router.get("/workspaces", response_model=Page[WorkspaceOut])
    def list_workspaces(
        request: Request,
        links: Links,
        role: WorkspaceRole = None,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[WorkspaceOut]:
        return paginate_converted(
            request, service.workspaces(), page, pagelen, lambda space: workspace_out(space, links)
        )

    # Bitbucket's newer listing of the caller's workspaces, which clients now call instead.
    @router.get("/user/workspaces", response_model=Page[WorkspaceAccessOut])
    def list_user_workspaces(
        request: Request,
        links: Links,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[WorkspaceAccessOut]:
        return paginate_converted(
            request,
            service.workspaces(),
            page,
            pagelen,
            lambda space: workspace_access_out(space, links),
        )

    @router.get("/workspaces/{workspace}", response_model=WorkspaceOut)
    def get_workspace(workspace: Workspace, links: Links) -> WorkspaceOut:
        return workspace_out(service.get_workspace(workspace), links)

    return router


def _repository_routes(
    route_class: type[APIRoute], service: HostService, ssh_url_base: str | None
) -> APIRouter:
    router = APIRouter(route_class=route_class, tags=["repositories"])

    def out(repo: RepositoryInfo, links: HostLinks) -> RepositoryOut:
        return repository_out(
            repo, links, ssh_url_base=ssh_url_base, main_branch=service.main_branch(repo)
        )

    def page_of(
        request: Request, links: HostLinks, repos: list[RepositoryInfo], page: int, pagelen: int
    ) -> Page[RepositoryOut]:
        # Only the repositories shown become answers: each one reads its HEAD from disk.
        return paginate_converted(request, repos, page, pagelen, lambda repo: out(repo, links))

    @router.get("/repositories", response_model=Page[RepositoryOut])
    def list_all_repositories(
        request: Request,
        links: Links,
        role: RepositoryRole = None,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[RepositoryOut]:
        return page_of(request, links, service.list_all_repositories(), page, pagelen)

    @router.get("/repositories/{workspace}", response_model=Page[RepositoryOut])
    def list_repositories(
        request: Request,
        workspace: Workspace,
        links: Links,
        role: RepositoryRole = None,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[RepositoryOut]:
        return page_of(request, links, service.list_repositories(workspace), page, pagelen)

    @router.post("/repositories/{workspace}", response_model=RepositoryOut)
    def create_repository_from_body(
        workspace: Workspace, body: RepositoryCreate, links: Links
    ) -> RepositoryOut:
        if body.slug is None:
            raise ValidationError(
                "slug_required",
                "the body names no repository slug",
                'send {"slug": "NAME"}, or POST to /repositories/WORKSPACE/SLUG',
            )
        created = service.create_repository(
            workspace, body.slug, description=body.description or ""
        )
        return out(created, links)

    # Bitbucket's body is optional here; when sent, it is read like the one above.
    @router.post("/repositories/{workspace}/{slug}", response_model=RepositoryOut)
    def create_repository(
        workspace: Workspace, slug: Slug, links: Links, body: RepositoryCreate | None = None
    ) -> RepositoryOut:
        description = body.description if body is not None else None
        return out(service.create_repository(workspace, slug, description=description or ""), links)

    # As on Bitbucket, PUT updates a repository (200) or creates it when missing (201).
    @router.put(
        "/repositories/{workspace}/{slug}",
        response_model=RepositoryOut,
        responses={201: {"model": RepositoryOut, "description": "created"}},
    )
    def create_or_update_repository(
        response: Response,
        workspace: Workspace,
        slug: Slug,
        links: Links,
        body: RepositoryCreate | None = None,
    ) -> RepositoryOut:
        description = body.description if body is not None else None
        repo, created = service.put_repository(workspace, slug, description=description)
        if created:
            response.status_code = 201
        return out(repo, links)

    @router.get("/repositories/{workspace}/{slug}", response_model=RepositoryOut)
    def get_repository(workspace: Workspace, slug: Slug, links: Links) -> RepositoryOut:
        return out(service.get_repository(workspace, slug), links)

    @router.delete("/repositories/{workspace}/{slug}", status_code=204)
    def delete_repository(workspace: Workspace, slug: Slug) -> Response:
        service.delete_repository(workspace, slug)
        return Response(status_code=204)

    return router


def _deploy_key_routes(route_class: type[APIRoute], service: HostService) -> APIRouter:
    router = APIRouter(
        prefix="/repositories/{workspace}/{slug}/deploy-keys",
        route_class=route_class,
        tags=["deploy keys"],
    )

    @router.get("", response_model=Page[DeployKeyOut])
    def list_deploy_keys(
        request: Request,
        workspace: Workspace,
        slug: Slug,
        links: Links,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[DeployKeyOut]:
        items = [deploy_key_out(key, links) for key in service.list_access_keys(workspace, slug)]
        return paginate(request, items, page, pagelen)

    @router.post("", response_model=DeployKeyOut)
    def add_deploy_key(
        workspace: Workspace, slug: Slug, body: DeployKeyCreate, links: Links
    ) -> DeployKeyOut:
        key = service.add_access_key(
            workspace, slug, body.key, label=body.label, writable=not body.read_only
        )
        return deploy_key_out(key, links)

    @router.get("/{key_id}", response_model=DeployKeyOut)
    def get_deploy_key(
        workspace: Workspace, slug: Slug, key_id: KeyId, links: Links
    ) -> DeployKeyOut:
        return deploy_key_out(service.get_access_key(workspace, slug, key_id), links)

    @router.put("/{key_id}", response_model=DeployKeyOut)
    def update_deploy_key(
        workspace: Workspace, slug: Slug, key_id: KeyId, body: DeployKeyUpdate, links: Links
    ) -> DeployKeyOut:
        writable = None if body.read_only is None else not body.read_only
        key = service.update_access_key(
            workspace, slug, key_id, label=body.label, writable=writable, key=body.key
        )
        return deploy_key_out(key, links)

    @router.delete("/{key_id}", status_code=204)
    def delete_deploy_key(workspace: Workspace, slug: Slug, key_id: KeyId) -> Response:
        service.remove_access_key(workspace, slug, key_id)
        return Response(status_code=204)

    return router


def _ssh_key_routes(route_class: type[APIRoute], service: HostService) -> APIRouter:
    router = APIRouter(route_class=route_class, tags=["workspace ssh keys"])

    def list_ssh_keys(
        request: Request,
        workspace: Workspace,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[SshKeyOut]:
        items = [ssh_key_out(key) for key in service.list_account_keys(workspace)]
        return paginate(request, items, page, pagelen)

    def add_ssh_key(workspace: Workspace, body: SshKeyCreate) -> SshKeyOut:
        return ssh_key_out(service.add_account_key(workspace, body.key, label=body.label))

    def delete_ssh_key(workspace: Workspace, key_id: KeyId) -> Response:
        service.remove_account_key(workspace, key_id)
        return Response(status_code=204)

    # Bitbucket keeps a person's keys under /users/{user}/ssh-keys; both spellings work here.
    for base in ("/workspaces/{workspace}/ssh-keys", "/users/{workspace}/ssh-keys"):
        router.add_api_route(base, list_ssh_keys, methods=["GET"], response_model=Page[SshKeyOut])
        router.add_api_route(
            base, add_ssh_key, methods=["POST"], response_model=SshKeyOut, status_code=201
        )
        router.add_api_route(
            base + "/{key_id}", delete_ssh_key, methods=["DELETE"], status_code=204
        )
    return router


def _hook_routes(route_class: type[APIRoute], hooks: HookService) -> APIRouter:
    router = APIRouter(
        prefix="/repositories/{workspace}/{slug}/hooks", route_class=route_class, tags=["webhooks"]
    )

    @router.get("", response_model=Page[HookOut])
    def list_hooks(
        request: Request,
        workspace: Workspace,
        slug: Slug,
        links: Links,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[HookOut]:
        items = [hook_out(hook, links) for hook in hooks.list_hooks(workspace, slug)]
        return paginate(request, items, page, pagelen)

    @router.post("", response_model=HookOut, status_code=201)
    def add_hook(workspace: Workspace, slug: Slug, body: HookCreate, links: Links) -> HookOut:
        hook = hooks.add_hook(
            workspace,
            slug,
            body.url,
            events=body.events,
            secret=body.secret,
            description=body.description,
            active=body.active,
        )
        return hook_out(hook, links)

    @router.get("/{uid}", response_model=HookOut)
    def get_hook(workspace: Workspace, slug: Slug, uid: HookId, links: Links) -> HookOut:
        return hook_out(hooks.get_hook(workspace, slug, uid), links)

    @router.delete("/{uid}", status_code=204)
    def delete_hook(workspace: Workspace, slug: Slug, uid: HookId) -> Response:
        hooks.remove_hook(workspace, slug, uid)
        return Response(status_code=204)

    @router.get("/{uid}/deliveries", response_model=Page[DeliveryOut])
    def list_deliveries(
        request: Request,
        workspace: Workspace,
        slug: Slug,
        uid: HookId,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[DeliveryOut]:
        items = [delivery_out(item) for item in hooks.list_deliveries(workspace, slug, uid)]
        return paginate(request, items, page, pagelen)

    return router
