"""The shapes of the built-in host's API: request bodies, answers, and records → answers.

Field names and types follow Bitbucket Cloud's 2.0 API where Bitbucket has them. Bodies
accept every field Bitbucket documents for them (used where this host has the notion, else
ignored) and ignore unknown fields, as Bitbucket does; every string has a length cap, so
nothing unbounded reaches a service. Answers carry Bitbucket's ``links``: absolute hrefs of
this server (:mod:`repolink.http.host_links`), only to addresses this API answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from repolink.host.hooks import SUPPORTED_EVENTS, DeliveryInfo, HookInfo
from repolink.host.info import AccessKeyInfo, AccountKeyInfo, RepositoryInfo, WorkspaceInfo
from repolink.host.naming import MAX_DESCRIPTION_LENGTH
from repolink.host.webhooks import bitbucket_uuid, ssh_clone_url
from repolink.http.host_links import HostLinks

# The largest body any route takes is one public key (a 16384-bit RSA key is ~2.8 kB).
MAX_BODY_BYTES = 64 * 1024


# -- bodies ---------------------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown fields are ignored, as Bitbucket does: clients send more than we use.
    model_config = ConfigDict(extra="ignore")


class ProjectRef(_Body):
    key: str | None = Field(default=None, max_length=200)
    uuid: str | None = Field(default=None, max_length=200)


class BranchName(_Body):
    name: str | None = Field(default=None, max_length=255)


class RepositoryCreate(_Body):
    """Bitbucket's repository body, to create or update. The description is kept; this host
    has no projects, languages, forks, issues or wikis, and no renaming, so those fields are
    accepted and ignored. Every repository is private, and git is its only ``scm`` (as on
    Bitbucket, which no longer serves Mercurial)."""

    slug: str | None = Field(
        default=None, max_length=200, description="when the path does not name the slug"
    )
    scm: Literal["git"] = "git"
    name: str | None = Field(default=None, max_length=255)
    is_private: bool | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    fork_policy: Literal["allow_forks", "no_public_forks", "no_forks"] | None = None
    project: ProjectRef | None = None
    language: str | None = Field(default=None, max_length=100)
    has_issues: bool | None = None
    has_wiki: bool | None = None
    mainbranch: BranchName | None = None


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


class Link(BaseModel):
    href: str


class CloneLink(BaseModel):
    name: str
    href: str


class SelfLinks(BaseModel):
    self: Link


class WorkspaceRef(BaseModel):
    type: Literal["workspace"] = "workspace"
    slug: str


class WorkspaceLinks(BaseModel):
    self: Link
    html: Link = Field(description="the workspace's own address: the host has no web pages")
    repositories: Link


class WorkspaceSummary(BaseModel):
    """A workspace where another object names it (a repository's ``workspace``)."""

    type: Literal["workspace"] = "workspace"
    uuid: str
    slug: str
    name: str
    links: WorkspaceLinks


class WorkspaceOut(WorkspaceSummary):
    is_private: bool = True
    created_on: datetime


class WorkspaceAccessOut(BaseModel):
    """One of the caller's workspaces (``GET /user/workspaces``); every caller of this API
    administers the whole host."""

    type: Literal["workspace_access"] = "workspace_access"
    administrator: bool = True
    workspace: WorkspaceSummary


class OwnerLinks(BaseModel):
    self: Link
    html: Link


class OwnerOut(BaseModel):
    """A repository's owner: its workspace, as the team account Bitbucket shows there."""

    type: Literal["team"] = "team"
    uuid: str
    username: str
    display_name: str
    links: OwnerLinks


class BranchRef(BaseModel):
    type: Literal["branch"] = "branch"
    name: str


class RepositoryRefLinks(BaseModel):
    self: Link
    html: Link


class RepositoryRef(BaseModel):
    type: Literal["repository"] = "repository"
    full_name: str
    name: str
    links: RepositoryRefLinks


class RepositoryLinks(BaseModel):
    # A field is spelled like its key ("deploy-keys"); names work too, for building.
    model_config = ConfigDict(populate_by_name=True)

    self: Link
    html: Link = Field(description="the repository's own address: the host has no web pages")
    clone: list[CloneLink] = Field(
        description="ssh, when the server knows its SSH address; the host serves no https"
    )
    hooks: Link
    deploy_keys: Link = Field(alias="deploy-keys")


class RepositoryOut(BaseModel):
    type: Literal["repository"] = "repository"
    uuid: str
    full_name: str
    name: str
    slug: str
    description: str
    scm: Literal["git"] = "git"
    is_private: bool = True
    fork_policy: Literal["no_forks"] = "no_forks"
    has_issues: bool = False
    has_wiki: bool = False
    language: str = ""
    mainbranch: BranchRef | None = Field(
        description="the branch HEAD names, once it exists (null before the first push)"
    )
    workspace: WorkspaceSummary
    owner: OwnerOut
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
    links: SelfLinks


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
    links: SelfLinks


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


def workspace_out(space: WorkspaceInfo, links: HostLinks) -> WorkspaceOut:
    summary = _workspace_summary(space.name, space.uuid, links)
    return WorkspaceOut(
        uuid=summary.uuid,
        slug=summary.slug,
        name=summary.name,
        links=summary.links,
        created_on=space.created_on,
    )


def workspace_access_out(space: WorkspaceInfo, links: HostLinks) -> WorkspaceAccessOut:
    return WorkspaceAccessOut(workspace=_workspace_summary(space.name, space.uuid, links))


def _workspace_summary(name: str, uuid: str, links: HostLinks) -> WorkspaceSummary:
    href = Link(href=links.workspace(name))
    return WorkspaceSummary(
        uuid=bitbucket_uuid(uuid),
        slug=name,
        name=name,
        links=WorkspaceLinks(
            self=href, html=href, repositories=Link(href=links.workspace_repositories(name))
        ),
    )


def repository_out(
    repo: RepositoryInfo,
    links: HostLinks,
    *,
    ssh_url_base: str | None,
    main_branch: str | None,
) -> RepositoryOut:
    clone = ssh_clone_url(ssh_url_base, repo)
    href = Link(href=links.repository(repo.full_name))
    workspace = _workspace_summary(repo.workspace, repo.workspace_uuid, links)
    return RepositoryOut(
        uuid=bitbucket_uuid(repo.id),
        full_name=repo.full_name,
        name=repo.slug,
        slug=repo.slug,
        description=repo.description,
        mainbranch=BranchRef(name=main_branch) if main_branch else None,
        workspace=workspace,
        owner=OwnerOut(
            uuid=workspace.uuid,
            username=repo.workspace,
            display_name=repo.workspace,
            links=OwnerLinks(self=workspace.links.self, html=workspace.links.html),
        ),
        created_on=repo.created_on,
        links=RepositoryLinks(
            self=href,
            html=href,
            clone=[CloneLink(name="ssh", href=clone)] if clone else [],
            hooks=Link(href=links.hooks(repo.full_name)),
            deploy_keys=Link(href=links.deploy_keys(repo.full_name)),
        ),
    )


def _repository_ref(full_name: str, links: HostLinks) -> RepositoryRef:
    href = Link(href=links.repository(full_name))
    return RepositoryRef(
        full_name=full_name,
        name=full_name.rpartition("/")[2],
        links=RepositoryRefLinks(self=href, html=href),
    )


def deploy_key_out(key: AccessKeyInfo, links: HostLinks) -> DeployKeyOut:
    full_name = key.repository_full_name
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
        repository=_repository_ref(full_name, links),
        links=SelfLinks(self=Link(href=links.deploy_key(full_name, key.id))),
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


def hook_out(hook: HookInfo, links: HostLinks) -> HookOut:
    uid = bitbucket_uuid(hook.uuid)
    return HookOut(
        uuid=uid,
        url=hook.url,
        description=hook.description,
        events=list(hook.events),
        active=hook.active,
        secret_set=hook.secret_set,
        created_at=hook.created_at,
        subject=_repository_ref(hook.repository_full_name, links),
        links=SelfLinks(self=Link(href=links.hook(hook.repository_full_name, uid))),
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
