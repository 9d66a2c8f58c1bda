"""The shapes of the built-in host's API: request bodies, answers, and records → answers.

Field names and types follow Bitbucket Cloud's 2.0 API where Bitbucket has them. Bodies
ignore unknown fields, as Bitbucket does; every string has a length cap, so nothing
unbounded reaches a service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from repolink.host.hooks import SUPPORTED_EVENTS, DeliveryInfo, HookInfo
from repolink.host.info import AccessKeyInfo, AccountKeyInfo, RepositoryInfo
from repolink.host.webhooks import bitbucket_uuid, ssh_clone_url

# The largest body any route takes is one public key (a 16384-bit RSA key is ~2.8 kB).
MAX_BODY_BYTES = 64 * 1024


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


# -- records → answers -------------------------------------------------------------------


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
