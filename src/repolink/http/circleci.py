"""CircleCI-shaped checkout keys: the paths, fields and statuses of CircleCI's API v2 and v1.1,
so the clients written for CircleCI read a project's checkout keys from repolink (issue 11 §5).

- v2: ``/api/v2/project/{project-slug}/checkout-key`` (``GET`` list, ``POST`` create with
  ``{"type": "deploy-key" | "user-key"}`` → 201) and ``…/checkout-key/{fingerprint}`` (``GET``,
  ``DELETE``); a key is ``{"public-key", "type", "fingerprint", "preferred", "created-at"}``, a
  list ``{"items": […], "next_page_token": null}``.
- v1.1: ``/api/v1.1/project/{vcs-type}/{org}/{repo}/checkout-key`` and ``…/{fingerprint}``; a
  key is ``{"public_key", "type", "fingerprint", "preferred", "time"}``, a list a JSON array.

A key's ``type`` is ``deploy-key`` or ``github-user-key`` in both versions, as CircleCI's own
documents give it (v2 takes ``user-key`` when creating one; both versions take either
spelling). ``fingerprint`` is MD5 colon-hex, or ``SHA256:…`` with ``?digest=sha256``; a key is
named in a path by either (URL-encoded: ``SHA256%3A…``, a ``/`` of the base64 as ``%2F`` or
as it is). ``{project-slug}`` is ``VCS/ORG/REPO`` (the ``/`` may be URL-encoded too) or our own
project slug (:meth:`repolink.platform.checkout_keys.CheckoutKeyService.resolve_project`).

Tokens come as ``Circle-Token`` or bearer (:mod:`repolink.http.auth`). Who may do what, and
the audit entries, are :mod:`repolink.accounts.checkout_key_access`'s (the Checkout keys page
calls it too); what each does to the deploy key (a key rotation) is
:mod:`repolink.platform.checkout_keys`'s. Errors keep repolink's one body.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from repolink.auth.principal import Principal
from repolink.http.auth import (
    bearer_scheme,
    circle_token_scheme,
    current_principal,
    principal_route_class,
)
from repolink.platform.checkout_keys import USER_KEY, CheckoutKeyInfo

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext

log = logging.getLogger(__name__)

V2_PREFIX = "/api/v2/project"
V11_PREFIX = "/api/v1.1/project"
GITHUB_USER_KEY: Literal["github-user-key"] = "github-user-key"
_TAG = "CircleCI checkout keys"

Digest = Literal["md5", "sha256"]
CreatedType = Literal["deploy-key", "user-key", "github-user-key"]
ShownType = Literal["deploy-key", "github-user-key"]

ProjectSlug = Annotated[
    str,
    Path(
        max_length=300,
        description="VCS/ORG/REPO (VCS: gh, github, bb, bitbucket, gl, gitlab), or the "
        "project's own slug; the / may be URL-encoded",
    ),
]
Fingerprint = Annotated[
    str,
    Path(
        max_length=200,
        description="MD5 colon-hex, or SHA256:… (URL-encoded: SHA256%3A…)",
    ),
]
Segment = Annotated[str, Path(max_length=200)]
DigestQuery = Annotated[
    Digest | None,
    Query(description="the fingerprint digest to answer: md5 (the default) or sha256"),
]
Caller = Annotated[Principal, Depends(current_principal)]


class CheckoutKeyCreate(BaseModel):
    """What kind of key to make: a deploy key, or a user key of the calling user."""

    type: CreatedType


class CheckoutKeyV2(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    public_key: str = Field(alias="public-key", description="the public SSH key")
    type: ShownType
    fingerprint: str = Field(description="MD5 colon-hex, or SHA256:… with digest=sha256")
    preferred: bool = Field(description="whether fetches use this key")
    created_at: datetime = Field(alias="created-at")


class CheckoutKeyListV2(BaseModel):
    items: list[CheckoutKeyV2]
    next_page_token: str | None = None


class CheckoutKeyV11(BaseModel):
    public_key: str
    type: ShownType
    fingerprint: str
    preferred: bool
    time: datetime


class Message(BaseModel):
    message: str


def build_circleci_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """The v2 and v1.1 checkout-key routes (a :data:`repolink.http.service_app.ROUTERS`
    builder)."""
    router = APIRouter(
        route_class=principal_route_class(application),
        tags=[_TAG],
        dependencies=[bearer_scheme(), circle_token_scheme()],
    )
    calls = application.checkout_key_access

    @router.get(f"{V2_PREFIX}/{{project_slug:path}}/checkout-key")
    def list_checkout_keys_v2(
        project_slug: ProjectSlug, principal: Caller, digest: DigestQuery = None
    ) -> CheckoutKeyListV2:
        keys = calls.list(principal, project_slug)
        return CheckoutKeyListV2(items=[_v2(key, digest) for key in keys])

    @router.post(f"{V2_PREFIX}/{{project_slug:path}}/checkout-key", status_code=201)
    def create_checkout_key_v2(
        project_slug: ProjectSlug,
        body: CheckoutKeyCreate,
        principal: Caller,
        digest: DigestQuery = None,
    ) -> CheckoutKeyV2:
        return _v2(calls.create(principal, project_slug, body.type), digest)

    @router.get(f"{V2_PREFIX}/{{project_slug:path}}/checkout-key/{{fingerprint:path}}")
    def get_checkout_key_v2(
        project_slug: ProjectSlug,
        fingerprint: Fingerprint,
        principal: Caller,
        digest: DigestQuery = None,
    ) -> CheckoutKeyV2:
        return _v2(calls.get(principal, project_slug, fingerprint), digest)

    @router.delete(f"{V2_PREFIX}/{{project_slug:path}}/checkout-key/{{fingerprint:path}}")
    def delete_checkout_key_v2(
        project_slug: ProjectSlug, fingerprint: Fingerprint, principal: Caller
    ) -> Message:
        calls.delete(principal, project_slug, fingerprint)
        return Message(message="ok")

    v11 = f"{V11_PREFIX}/{{vcs_type}}/{{org}}/{{repo}}/checkout-key"

    @router.get(v11)
    def list_checkout_keys_v11(
        vcs_type: Segment, org: Segment, repo: Segment, principal: Caller
    ) -> list[CheckoutKeyV11]:
        keys = calls.list(principal, f"{vcs_type}/{org}/{repo}")
        return [_v11(key) for key in keys]

    @router.post(v11, status_code=201)
    def create_checkout_key_v11(
        vcs_type: Segment,
        org: Segment,
        repo: Segment,
        body: CheckoutKeyCreate,
        principal: Caller,
    ) -> CheckoutKeyV11:
        return _v11(calls.create(principal, f"{vcs_type}/{org}/{repo}", body.type))

    @router.get(f"{v11}/{{fingerprint:path}}")
    def get_checkout_key_v11(
        vcs_type: Segment, org: Segment, repo: Segment, fingerprint: Fingerprint, principal: Caller
    ) -> CheckoutKeyV11:
        return _v11(calls.get(principal, f"{vcs_type}/{org}/{repo}", fingerprint))

    @router.delete(f"{v11}/{{fingerprint:path}}")
    def delete_checkout_key_v11(
        vcs_type: Segment, org: Segment, repo: Segment, fingerprint: Fingerprint, principal: Caller
    ) -> Message:
        calls.delete(principal, f"{vcs_type}/{org}/{repo}", fingerprint)
        return Message(message="OK")

    return router


def _shown_type(key: CheckoutKeyInfo) -> ShownType:
    return GITHUB_USER_KEY if key.kind == USER_KEY else "deploy-key"


def _fingerprint(key: CheckoutKeyInfo, digest: Digest | None) -> str:
    return key.fingerprint_sha256 if digest == "sha256" else key.md5_hex


def _v2(key: CheckoutKeyInfo, digest: Digest | None) -> CheckoutKeyV2:
    return CheckoutKeyV2(
        public_key=key.public_key,
        type=_shown_type(key),
        fingerprint=_fingerprint(key, digest),
        preferred=key.preferred,
        created_at=_utc(key.created_at),
    )


def _v11(key: CheckoutKeyInfo) -> CheckoutKeyV11:
    return CheckoutKeyV11(
        public_key=key.public_key,
        type=_shown_type(key),
        fingerprint=key.md5_hex,
        preferred=key.preferred,
        time=_utc(key.created_at),
    )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
