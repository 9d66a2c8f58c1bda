"""The shapes of the platform API's projects, members, repository, fetches and commits:
request bodies, answers, and the services' records → answers.

Every list answers ``{"items": [...]}`` (the commit list adds ``next_cursor``); every string a
body carries has a length cap, so nothing unbounded reaches a service. Key material in a body
is a :class:`~pydantic.SecretStr`: it is never part of a repr, a log line or a validation error.
No answer model but :class:`RepositoryConnected` has a field that could hold a private key, and
that one only carries it on the answer to a generate that asked for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from repolink.accounts.info import MemberInfo
from repolink.auth.principal import Role
from repolink.errors import ValidationError
from repolink.keys import KEY_TYPES, PrivateKey, parse_private_key
from repolink.platform.commits import CommitInfo, CommitPage, RefInfo
from repolink.platform.connections import ConnectionInfo, DeployKeyInfo
from repolink.platform.doctor import Check, DoctorReport
from repolink.platform.fetch_requests import FetchRunInfo
from repolink.platform.projects import MAX_NAME_LENGTH, MAX_SLUG_LENGTH, ProjectInfo

# A private key file is a few kB (16384-bit RSA in PEM: ~12 kB); the body limit is 64 KiB.
MAX_KEY_CHARS = 60 * 1024
MAX_URL_CHARS = 2048
MAX_PASSPHRASE_CHARS = 1024


class _Body(BaseModel):
    # Unknown fields are ignored: clients written for a later version send more.
    model_config = ConfigDict(extra="ignore")


# -- projects and members --------------------------------------------------------------------


class ProjectCreate(_Body):
    # Longer than a name may be, so that the service names the rule (project_name_invalid).
    name: str = Field(max_length=4 * MAX_NAME_LENGTH)
    slug: str | None = Field(default=None, max_length=4 * MAX_SLUG_LENGTH)


class ProjectUpdate(_Body):
    name: str | None = Field(default=None, max_length=4 * MAX_NAME_LENGTH)


class ProjectOut(BaseModel):
    id: str
    slug: str
    name: str
    created_at: datetime
    connected: bool


class ProjectList(BaseModel):
    items: list[ProjectOut]


class MemberSet(_Body):
    role: Role


class MemberOut(BaseModel):
    username: str
    role: Role
    added_at: datetime


class MemberList(BaseModel):
    items: list[MemberOut]


def project_out(info: ProjectInfo) -> ProjectOut:
    return ProjectOut.model_validate(info, from_attributes=True)


def member_out(info: MemberInfo) -> MemberOut:
    return MemberOut.model_validate(info, from_attributes=True)


# -- the repository connection ---------------------------------------------------------------


class KeyGeneration(_Body):
    type: str = Field(
        default="ed25519",
        max_length=20,
        json_schema_extra={"enum": list(KEY_TYPES)},
        description="the key type; ed25519 is recommended",
    )
    bits: int | None = Field(
        default=None,
        ge=0,
        le=65536,
        description="rsa: 2048, 3072 (default) or 4096; ecdsa: 256 (default), 384 or 521",
    )


class RepositoryPut(_Body):
    url: str = Field(max_length=MAX_URL_CHARS, description="the repository's SSH URL")
    private_key: SecretStr | None = Field(
        default=None,
        max_length=MAX_KEY_CHARS,
        description="a private key to import (OpenSSH, PEM or PuTTY); or give generate",
    )
    passphrase: SecretStr | None = Field(
        default=None, max_length=MAX_PASSPHRASE_CHARS, description="the private key's passphrase"
    )
    generate: KeyGeneration | None = Field(
        default=None, description="generate a new deploy key; or give private_key"
    )
    return_private_key: bool = Field(
        default=False,
        description=(
            "with generate: this one answer carries the new private key (OpenSSH format) for "
            "download; no later answer ever does"
        ),
    )


class ErrorOut(BaseModel):
    code: str
    message: str
    hint: str = ""


class DeployKeyOut(BaseModel):
    key_type: str
    bits: int
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    origin: str
    created_at: datetime
    last_used_at: datetime | None


class RepositoryOut(BaseModel):
    url: str
    state: str = Field(description="ok, failed, unknown (never fetched) or fetching")
    error: ErrorOut | None
    attempted_at: datetime | None
    fetched_at: datetime | None
    created_at: datetime
    deploy_key: DeployKeyOut
    commits: int
    refs: int


class FetchRef(BaseModel):
    id: int
    state: str


class RepositoryConnected(RepositoryOut):
    fetch: FetchRef | None = Field(description="the first fetch, queued")
    private_key: str | None = Field(
        default=None,
        description="the generated private key, only when return_private_key was asked for",
    )


def deploy_key_out(key: DeployKeyInfo) -> DeployKeyOut:
    return DeployKeyOut.model_validate(key, from_attributes=True)


def repository_fields(info: ConnectionInfo) -> dict[str, Any]:
    """The fields of :class:`RepositoryOut` (and of the answer to a PUT, which adds two)."""
    error = (
        ErrorOut(code=info.error_code, message=info.error_message or "", hint=info.error_hint or "")
        if info.error_code
        else None
    )
    return {
        "url": info.url,
        "state": info.state,
        "error": error,
        "attempted_at": info.attempted_at,
        "fetched_at": info.fetched_at,
        "created_at": info.created_at,
        "deploy_key": deploy_key_out(info.deploy_key),
        "commits": info.commits,
        "refs": info.refs,
    }


def repository_out(info: ConnectionInfo) -> RepositoryOut:
    return RepositoryOut(**repository_fields(info))


def chosen_key(
    private_key: SecretStr | None,
    passphrase: SecretStr | None,
    generate: KeyGeneration | None,
    *,
    required: bool = True,
) -> PrivateKey | None:
    """The body's private key, parsed as the CLI parses one (the same error codes), or
    ``None`` for a key to generate; exactly one of the two, as the CLI asks (unless not
    ``required``: neither is a generate with the defaults)."""
    both = private_key is not None and generate is not None
    neither = private_key is None and generate is None
    if both or (neither and required):
        raise ValidationError(
            "key_choice_required",
            "give exactly one of private_key and generate",
            'send "generate": {"type": "ed25519"} for a new key, or "private_key" to import one',
        )
    if private_key is None:
        if generate is not None and generate.type not in KEY_TYPES:
            raise ValidationError(
                "key_type_invalid",
                "the key type must be ed25519, rsa or ecdsa",
                'generate {"type": "ed25519"} (recommended), "rsa" or "ecdsa"',
            )
        if passphrase is not None:
            raise ValidationError(
                "passphrase_without_key",
                "a passphrase was given, but no private key to unlock",
                "leave out the passphrase when generating a key",
            )
        return None
    secret = passphrase.get_secret_value() if passphrase is not None else None
    return parse_private_key(private_key.get_secret_value(), secret).key


# -- fetches ---------------------------------------------------------------------------------


class FetchRunOut(BaseModel):
    id: int
    trigger: str
    actor: str | None
    state: str = Field(description="queued, running, done, failed or cancelled")
    attempts: int
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None = Field(description="seconds, once finished")
    error_code: str | None
    new_commits: int


class FetchRunList(BaseModel):
    items: list[FetchRunOut]


def fetch_run_out(run: FetchRunInfo) -> FetchRunOut:
    return FetchRunOut.model_validate(run, from_attributes=True)


# -- commits and refs ------------------------------------------------------------------------


class CommitOut(BaseModel):
    sha: str
    parents: list[str]
    author_name: str
    author_email: str
    authored_at: datetime
    committed_at: datetime
    subject: str
    refs: list[str]
    hidden: bool


class CommitPageOut(BaseModel):
    items: list[CommitOut]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: no more")


class FetchDone(BaseModel):
    """A fetch waited for, as the "Fetch repository" button shows it."""

    fetch: FetchRunOut
    new_commits: list[CommitOut] = Field(description="newest first, at most 100")
    errors: list[ErrorOut]


class RefOut(BaseModel):
    name: str
    short_name: str
    kind: str
    target: str
    commit_sha: str
    committed_at: datetime | None
    subject: str | None
    hidden: bool


class RefList(BaseModel):
    items: list[RefOut]


def commit_out(commit: CommitInfo) -> CommitOut:
    return CommitOut(
        sha=commit.sha,
        parents=list(commit.parents),
        author_name=commit.author_name,
        author_email=commit.author_email,
        authored_at=commit.author_time,
        committed_at=commit.commit_time,
        subject=commit.subject,
        refs=list(commit.refs),
        hidden=commit.hidden,
    )


def commit_page_out(page: CommitPage) -> CommitPageOut:
    return CommitPageOut(
        items=[commit_out(commit) for commit in page.commits], next_cursor=page.next_cursor
    )


def ref_out(ref: RefInfo) -> RefOut:
    return RefOut(
        name=ref.name,
        short_name=ref.short_name,
        kind=ref.kind,
        target=ref.target,
        commit_sha=ref.commit_sha,
        committed_at=ref.commit_time,
        subject=ref.subject,
        hidden=ref.hidden,
    )


# -- doctor ----------------------------------------------------------------------------------


class CheckOut(BaseModel):
    name: str
    title: str
    status: str = Field(description="passed, failed or skipped")
    detail: str
    code: str | None
    hint: str | None


class DoctorOut(BaseModel):
    url: str
    ok: bool
    checks: list[CheckOut]


def check_out(check: Check) -> CheckOut:
    return CheckOut.model_validate(check, from_attributes=True)


def doctor_out(report: DoctorReport) -> DoctorOut:
    return DoctorOut(
        url=report.url, ok=report.ok, checks=[check_out(check) for check in report.checks]
    )


def error_out(error: Mapping[str, str]) -> ErrorOut:
    return ErrorOut(
        code=error.get("code", ""), message=error.get("message", ""), hint=error.get("hint", "")
    )
