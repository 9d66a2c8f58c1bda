"""The built-in host's HTTP API, shaped like Bitbucket Cloud's 2.0 API under ``/host/api/2.0``.

Same paths, field names and status codes as Bitbucket where Bitbucket has them, so client code
written for one serves both: repositories, deploy keys (our access keys), workspace SSH keys
(our account keys) and webhooks. Every route calls :class:`HostService` or
:class:`HookService`; nothing here decides anything.

Every route needs ``Authorization: Bearer <admin token>``. The check runs before FastAPI reads
the request body, so an anonymous caller learns nothing, not even whether its body would
have been valid: a missing and a wrong token get the same 401, whatever else was sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repolink import __version__
from repolink.auth.tokens import verify_token
from repolink.errors import Unauthorized, ValidationError
from repolink.host.hooks import SUPPORTED_EVENTS, DeliveryInfo, HookInfo, HookService
from repolink.host.info import AccessKeyInfo, AccountKeyInfo, RepositoryInfo
from repolink.host.service import HostService
from repolink.host.webhooks import bitbucket_uuid, ssh_clone_url
from repolink.http.errors import error_body, install_error_handlers
from repolink.settings import Settings
from repolink.store import Store

log = logging.getLogger(__name__)

API_PREFIX = "/host/api/2.0"
# The largest body any route takes is one public key (a 16384-bit RSA key is ~2.8 kB).
MAX_BODY_BYTES = 64 * 1024
DEFAULT_PAGELEN = 10
MAX_PAGELEN = 100
# Ids are SQL integers; anything larger is refused before it reaches the database driver.
MAX_ID = 2**53

T = TypeVar("T")

Workspace = Annotated[str, Path(max_length=200, description="workspace name")]
Slug = Annotated[str, Path(max_length=200, description="repository slug")]
KeyId = Annotated[int, Path(ge=1, le=MAX_ID)]
HookId = Annotated[str, Path(max_length=64, description="the hook's uuid, with or without {}")]
PageNumber = Annotated[int, Query(ge=1, le=MAX_ID)]
PageLength = Annotated[int, Query(ge=1, le=MAX_PAGELEN)]


# -- bodies ---------------------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown fields are ignored, as Bitbucket does: clients send more than we use.
    model_config = ConfigDict(extra="ignore")


class RepositoryCreate(_Body):
    slug: str | None = Field(default=None, max_length=200)


class DeployKeyCreate(_Body):
    key: str = Field(max_length=MAX_BODY_BYTES)
    label: str = Field(max_length=1000)
    read_only: bool = True


class DeployKeyUpdate(_Body):
    label: str | None = Field(default=None, max_length=1000)
    read_only: bool | None = None
    key: str | None = Field(
        default=None,
        max_length=MAX_BODY_BYTES,
        description="accepted for Bitbucket compatibility; must be the key already stored",
    )


class SshKeyCreate(_Body):
    key: str = Field(max_length=MAX_BODY_BYTES)
    label: str = Field(max_length=1000)


class HookCreate(_Body):
    url: str = Field(max_length=4096)
    events: list[str] = Field(default_factory=lambda: list(SUPPORTED_EVENTS), max_length=20)
    secret: str | None = Field(default=None, max_length=1000)
    description: str = Field(default="", max_length=1000)
    active: bool = True


# -- answers --------------------------------------------------------------------------------


class WorkspaceRef(BaseModel):
    type: Literal["workspace"] = "workspace"
    slug: str


class RepositoryRef(BaseModel):
    type: Literal["repository"] = "repository"
    full_name: str
    name: str


class CloneLink(BaseModel):
    name: str
    href: str


class RepositoryLinks(BaseModel):
    clone: list[CloneLink]


class RepositoryOut(BaseModel):
    type: Literal["repository"] = "repository"
    uuid: str
    full_name: str
    name: str
    slug: str
    workspace: WorkspaceRef
    scm: Literal["git"] = "git"
    is_private: bool = True
    created_on: datetime
    links: RepositoryLinks


class DeployKeyOut(BaseModel):
    type: Literal["deploy_key"] = "deploy_key"
    id: int
    key: str = Field(description="the public key, without its comment")
    comment: str
    label: str
    read_only: bool
    fingerprint_sha256: str
    fingerprint_md5: str
    added_on: datetime
    last_used: datetime | None
    repository: RepositoryRef


class SshKeyOut(BaseModel):
    type: Literal["ssh_key"] = "ssh_key"
    id: int
    key: str = Field(description="the public key, without its comment")
    comment: str
    label: str
    fingerprint_sha256: str
    fingerprint_md5: str
    created_on: datetime
    last_used: datetime | None
    workspace: WorkspaceRef


class HookOut(BaseModel):
    type: Literal["webhook_subscription"] = "webhook_subscription"
    uuid: str
    url: str
    description: str
    events: list[str]
    active: bool
    secret_set: bool
    created_at: datetime
    subject_type: Literal["repository"] = "repository"
    subject: RepositoryRef


class DeliveryOut(BaseModel):
    id: int
    request_uuid: str
    event: str
    status: str
    attempts: int
    last_response_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Page(BaseModel, Generic[T]):
    """Bitbucket's paginated list."""

    values: list[T]
    pagelen: int
    size: int
    page: int
    next: str | None = None


# -- the app --------------------------------------------------------------------------------


def create_host_api(
    settings: Settings,
    store: Store,
    service: HostService,
    *,
    hooks: HookService | None = None,
    ssh_url_base: str | None = None,
) -> FastAPI:
    """The host API as an app of its own (``repolink host serve`` runs it on uvicorn).

    ``ssh_url_base`` (``ssh://git@host:2222``) makes repositories carry their SSH clone link.
    """
    app = FastAPI(
        title="repolink host API",
        version=__version__,
        description="Bitbucket Cloud-shaped API of repolink's built-in Git host.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.include_router(
        build_host_router(settings, store, service, hooks=hooks, ssh_url_base=ssh_url_base)
    )
    return app


def build_host_router(
    settings: Settings,
    store: Store,
    service: HostService,
    *,
    hooks: HookService | None = None,
    ssh_url_base: str | None = None,
) -> APIRouter:
    """Every route of the host API, under ``/host/api/2.0``, each behind the admin token."""
    hook_service = hooks or HookService(settings, store, service)
    # Every sub-router is built with this route class: an included route keeps its own class.
    route_class = authenticated_route_class(settings, store)
    router = APIRouter(
        prefix=API_PREFIX,
        route_class=route_class,
        # Declared for the OpenAPI document only; the route class does the checking.
        dependencies=[_bearer_scheme_dependency()],
    )
    router.include_router(_repository_routes(route_class, service, ssh_url_base))
    router.include_router(_deploy_key_routes(route_class, service))
    router.include_router(_ssh_key_routes(route_class, service))
    router.include_router(_hook_routes(route_class, hook_service))
    return router


# -- authentication -------------------------------------------------------------------------


def authenticated_route_class(settings: Settings, store: Store) -> type[APIRoute]:
    """A route class that refuses the request before anything else unless the token is good.

    A FastAPI dependency would run only after the body was read and validated, answering an
    anonymous caller's bad body with a 400; the check has to come first.
    """

    class AuthenticatedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def authenticated_handler(request: Request) -> Response:
                token = bearer_token(request.headers.get("authorization"))
                if not await run_in_threadpool(_token_is_valid, settings, store, token):
                    log.debug("refused an unauthenticated request to %s", request.url.path)
                    raise unauthorized()
                return await handler(request)

            return authenticated_handler

    return AuthenticatedRoute


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def unauthorized() -> Unauthorized:
    # One answer for every failure: it must not tell a missing token from a wrong one.
    return Unauthorized(
        "unauthorized",
        "authentication required",
        "send an admin token as 'Authorization: Bearer TOKEN'",
    )


def _token_is_valid(settings: Settings, store: Store, token: str | None) -> bool:
    if token is None:
        return False
    with store.session() as session:
        return verify_token(session, settings, token)


def _bearer_scheme_dependency() -> Any:
    return Depends(HTTPBearer(auto_error=False, description="an admin token of the host"))


# -- routes ---------------------------------------------------------------------------------


def _repository_routes(
    route_class: type[APIRoute], service: HostService, ssh_url_base: str | None
) -> APIRouter:
    router = APIRouter(route_class=route_class, tags=["repositories"])

    def out(repo: RepositoryInfo) -> RepositoryOut:
        return repository_out(repo, ssh_url_base)

    @router.get("/repositories/{workspace}", response_model=Page[RepositoryOut])
    def list_repositories(
        request: Request,
        workspace: Workspace,
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[RepositoryOut]:
        items = [out(repo) for repo in service.list_repositories(workspace)]
        return paginate(request, items, page, pagelen)

    @router.post("/repositories/{workspace}", response_model=RepositoryOut)
    def create_repository_from_body(workspace: Workspace, body: RepositoryCreate) -> RepositoryOut:
        if body.slug is None:
            raise ValidationError(
                "slug_required",
                "the body names no repository slug",
                'send {"slug": "NAME"}, or POST to /repositories/WORKSPACE/SLUG',
            )
        return out(service.create_repository(workspace, body.slug))

    @router.post("/repositories/{workspace}/{slug}", response_model=RepositoryOut)
    def create_repository(workspace: Workspace, slug: Slug) -> RepositoryOut:
        return out(service.create_repository(workspace, slug))

    @router.get("/repositories/{workspace}/{slug}", response_model=RepositoryOut)
    def get_repository(workspace: Workspace, slug: Slug) -> RepositoryOut:
        return out(service.get_repository(workspace, slug))

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
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[DeployKeyOut]:
        items = [deploy_key_out(key) for key in service.list_access_keys(workspace, slug)]
        return paginate(request, items, page, pagelen)

    @router.post("", response_model=DeployKeyOut)
    def add_deploy_key(workspace: Workspace, slug: Slug, body: DeployKeyCreate) -> DeployKeyOut:
        key = service.add_access_key(
            workspace, slug, body.key, label=body.label, writable=not body.read_only
        )
        return deploy_key_out(key)

    @router.get("/{key_id}", response_model=DeployKeyOut)
    def get_deploy_key(workspace: Workspace, slug: Slug, key_id: KeyId) -> DeployKeyOut:
        return deploy_key_out(service.get_access_key(workspace, slug, key_id))

    @router.put("/{key_id}", response_model=DeployKeyOut)
    def update_deploy_key(
        workspace: Workspace, slug: Slug, key_id: KeyId, body: DeployKeyUpdate
    ) -> DeployKeyOut:
        writable = None if body.read_only is None else not body.read_only
        key = service.update_access_key(
            workspace, slug, key_id, label=body.label, writable=writable, key=body.key
        )
        return deploy_key_out(key)

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
        page: PageNumber = 1,
        pagelen: PageLength = DEFAULT_PAGELEN,
    ) -> Page[HookOut]:
        items = [hook_out(hook) for hook in hooks.list_hooks(workspace, slug)]
        return paginate(request, items, page, pagelen)

    @router.post("", response_model=HookOut, status_code=201)
    def add_hook(workspace: Workspace, slug: Slug, body: HookCreate) -> HookOut:
        hook = hooks.add_hook(
            workspace,
            slug,
            body.url,
            events=body.events,
            secret=body.secret,
            description=body.description,
            active=body.active,
        )
        return hook_out(hook)

    @router.get("/{uid}", response_model=HookOut)
    def get_hook(workspace: Workspace, slug: Slug, uid: HookId) -> HookOut:
        return hook_out(hooks.get_hook(workspace, slug, uid))

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


# -- conversions ----------------------------------------------------------------------------


def paginate(request: Request, items: Sequence[T], page: int, pagelen: int) -> Page[T]:
    start = (page - 1) * pagelen
    has_next = start + pagelen < len(items)
    return Page[T](
        values=list(items[start : start + pagelen]),
        pagelen=pagelen,
        size=len(items),
        page=page,
        next=str(request.url.include_query_params(page=page + 1)) if has_next else None,
    )


def repository_out(repo: RepositoryInfo, ssh_url_base: str | None) -> RepositoryOut:
    clone = ssh_clone_url(ssh_url_base, repo)
    return RepositoryOut(
        uuid=bitbucket_uuid(repo.id),
        full_name=repo.full_name,
        name=repo.slug,
        slug=repo.slug,
        workspace=WorkspaceRef(slug=repo.workspace),
        created_on=repo.created_on,
        links=RepositoryLinks(clone=[CloneLink(name="ssh", href=clone)] if clone else []),
    )


def _repository_ref(full_name: str) -> RepositoryRef:
    return RepositoryRef(full_name=full_name, name=full_name.rpartition("/")[2])


def deploy_key_out(key: AccessKeyInfo) -> DeployKeyOut:
    return DeployKeyOut(
        id=key.id,
        key=key.key,
        comment=key.comment,
        label=key.label,
        read_only=key.read_only,
        fingerprint_sha256=key.fingerprint_sha256,
        fingerprint_md5=key.fingerprint_md5,
        added_on=key.added_on,
        last_used=key.last_used,
        repository=_repository_ref(key.repository_full_name),
    )


def ssh_key_out(key: AccountKeyInfo) -> SshKeyOut:
    return SshKeyOut(
        id=key.id,
        key=key.key,
        comment=key.comment,
        label=key.label,
        fingerprint_sha256=key.fingerprint_sha256,
        fingerprint_md5=key.fingerprint_md5,
        created_on=key.added_on,
        last_used=key.last_used,
        workspace=WorkspaceRef(slug=key.workspace),
    )


def hook_out(hook: HookInfo) -> HookOut:
    return HookOut(
        uuid=bitbucket_uuid(hook.uuid),
        url=hook.url,
        description=hook.description,
        events=list(hook.events),
        active=hook.active,
        secret_set=hook.secret_set,
        created_at=hook.created_at,
        subject=_repository_ref(hook.repository_full_name),
    )


def delivery_out(item: DeliveryInfo) -> DeliveryOut:
    return DeliveryOut(
        id=item.id,
        request_uuid=item.request_uuid,
        event=item.event,
        status=item.status,
        attempts=item.attempts,
        last_response_code=item.last_response_code,
        last_error=item.last_error,
        next_attempt_at=item.next_attempt_at,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


# -- request size ---------------------------------------------------------------------------


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` (413) before anything parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_too_large(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Read inside the route: FastAPI answers it as an unreadable body (400).
                    raise ValueError("request body over the size limit")
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_too_large(send: Send) -> None:
    body = json.dumps(
        error_body("request_too_large", "the request body is too large", "send a smaller body")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
