"""The shapes of the platform API's key routes: a project's keys and their rotation, additional
keys, key rules, known hosts and the audit log — request bodies, answers, records → answers.

No answer model has a field for a private key but :class:`RotationStartedOut`'s
``private_key``, filled only when the caller asked for a generated key to be returned (DESIGN
§5: shown once, at generation). An uploaded private key and its passphrase are ``SecretStr``:
no repr or log line of a body shows them. Every string has a length cap, so nothing unbounded
reaches a service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from repolink.errors import RepolinkError
from repolink.http.v1_schemas import MAX_KEY_CHARS, MAX_PASSPHRASE_CHARS, KeyGeneration
from repolink.knownhosts import ScannedHostKey, TrustedHostKey
from repolink.platform.additional_keys import AdditionalKeyInfo
from repolink.platform.key_inventory import KeyStatus
from repolink.platform.key_rules import KeyRuleInfo
from repolink.platform.rotation import (
    KeyFacts,
    OnHost,
    PendingRotation,
    RotationAborted,
    RotationCompleted,
    RotationStarted,
)

MAX_HOSTNAME_CHARS = 300
MAX_PREFIX_CHARS = 2048


# -- bodies ---------------------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown fields are ignored, as the rest of the platform API does: clients written for a
    # later version send more.
    model_config = ConfigDict(extra="ignore")


class KeyChoice(_Body):
    """A key to generate, or one to import, as the repository's PUT takes it."""

    generate: KeyGeneration | None = Field(default=None, description="a new key, made here")
    private_key: SecretStr | None = Field(
        default=None,
        max_length=MAX_KEY_CHARS,
        description="an existing key pair to import (OpenSSH, PEM or PKCS#8); never answered",
    )
    passphrase: SecretStr | None = Field(
        default=None,
        max_length=MAX_PASSPHRASE_CHARS,
        description="the passphrase of an encrypted private_key",
    )


class RotateBody(KeyChoice):
    """Neither ``generate`` nor ``private_key``: a new ed25519 key is generated."""

    replace_pending: bool = Field(
        default=False, description="discard a pending rotation's key and start over"
    )
    return_private_key: bool = Field(
        default=False,
        description="with generate: this one answer carries the new private key (OpenSSH "
        "format) for download; no later answer ever does",
    )


class AdditionalKeyCreate(KeyChoice):
    """Exactly one of ``generate`` and ``private_key``."""

    hostname: str = Field(
        default="",
        max_length=MAX_HOSTNAME_CHARS,
        description="host or host:port the key is for; blank: any host",
    )


class KeyRuleCreate(_Body):
    prefix: str = Field(
        max_length=MAX_PREFIX_CHARS,
        description="URL prefix, e.g. ssh://git@host/team/ or a repository's URL",
    )
    key: str = Field(
        max_length=200,
        description="'deploy', or an additional key's fingerprint (SHA256 or MD5) or id",
    )


class HostTarget(_Body):
    host: str = Field(max_length=MAX_HOSTNAME_CHARS, description="host name or address")
    port: int = Field(default=22, ge=1, le=65535)


class TrustBody(HostTarget):
    fingerprint: str = Field(
        max_length=200, description="SHA256:… of the one key to trust, checked out of band"
    )
    force: bool = Field(
        default=False,
        description="trust a key of a host with shipped keys; those then stop being trusted",
    )


# -- answers --------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    code: str
    message: str
    hint: str


class KeyOut(BaseModel):
    """One key of a project: its deploy key, a pending or retired one, an additional key."""

    id: str
    use: str | None = Field(description="'deploy key' or 'additional key'")
    state: Literal["active", "pending", "retired"]
    label: str
    key_type: str
    bits: int
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    created_at: datetime
    age_days: int
    last_used_at: datetime | None
    days_since_use: int | None
    retired_at: datetime | None
    rotate_due: bool


class KeyFactsOut(BaseModel):
    id: str
    key_type: str
    bits: int
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    created_at: datetime


class PendingRotationOut(BaseModel):
    project: str
    url: str
    state: Literal["pending"] = "pending"
    current_key: KeyFactsOut
    new_key: KeyFactsOut
    started_at: datetime


class KeysOut(BaseModel):
    items: list[KeyOut]
    pending_rotation: PendingRotationOut | None


class OnHostOut(BaseModel):
    """What a rotation step did on the Git host the deploy key is registered on; ``error``:
    the step is done, but the key named could not be removed there (remove it by hand)."""

    host: str
    repository: str
    error: ErrorOut | None


class RotationStartedOut(PendingRotationOut):
    origin: Literal["generated", "imported"]
    replaced_key: KeyFactsOut | None
    on_host: OnHostOut | None
    private_key: str | None = Field(
        default=None,
        description="only when return_private_key was asked on a generate: the new private key",
    )


class FetchOut(BaseModel):
    new_commits: int
    removed_commits: int
    skipped: bool
    attempted_at: datetime
    duration: float


class RotationCompletedOut(BaseModel):
    project: str
    state: Literal["completed"] = "completed"
    deploy_key: KeyFactsOut
    retired_key: KeyFactsOut
    retired_at: datetime
    fetch: FetchOut
    on_host: OnHostOut | None


class RotationAbortedOut(BaseModel):
    project: str
    discarded_key: KeyFactsOut
    on_host: OnHostOut | None


class AdditionalKeyOut(BaseModel):
    id: str
    project: str
    hostname: str = Field(description="host or host:port; blank: any host")
    key_type: str
    bits: int
    public_key: str
    fingerprint_sha256: str
    fingerprint_md5: str
    origin: Literal["generated", "imported"]
    created_at: datetime
    last_used_at: datetime | None


class KeyRuleOut(BaseModel):
    id: str
    project: str
    prefix: str
    key: str = Field(description="'deploy', or the additional key's SHA256 fingerprint")
    key_fingerprint_sha256: str | None = Field(
        description="the key the rule picks now (null: the deploy key, while not connected)"
    )
    created_at: datetime


class ScannedHostKeyOut(BaseModel):
    host: str
    port: int
    key_type: str
    fingerprint: str
    public_key: str


class KnownHostOut(BaseModel):
    id: int | None = Field(description="a stored key's id; null for a key shipped with repolink")
    host: str
    port: int
    name: str
    key_type: str
    fingerprint: str
    public_key: str
    source: Literal["shipped", "stored"]
    reference: str | None
    trusted_at: datetime | None
    overrides_pin: bool
    overridden: bool


class TrustedOut(BaseModel):
    created: bool = Field(description="false: the key was trusted already")
    key: KnownHostOut


# -- records → answers ----------------------------------------------------------------------
# An answer whose fields are all the record's own, by the same names, is read off the record
# (``from_attributes``); the others name what they rename, round or nest.


def key_out(key: KeyStatus) -> KeyOut:
    return KeyOut.model_validate(key, from_attributes=True)


def key_facts_out(key: KeyFacts) -> KeyFactsOut:
    return KeyFactsOut.model_validate(key, from_attributes=True)


def pending_out(rotation: PendingRotation) -> PendingRotationOut:
    return PendingRotationOut(
        project=rotation.project,
        url=rotation.url,
        current_key=key_facts_out(rotation.current_key),
        new_key=key_facts_out(rotation.new_key),
        started_at=rotation.started_at,
    )


def _error_out(error: RepolinkError | None) -> ErrorOut | None:
    if error is None:
        return None
    return ErrorOut(code=error.code, message=error.message, hint=error.hint)


def _on_host_out(on_host: OnHost | None) -> OnHostOut | None:
    if on_host is None:
        return None
    return OnHostOut(
        host=on_host.host, repository=on_host.repository, error=_error_out(on_host.error)
    )


def started_out(started: RotationStarted, private_key: str | None = None) -> RotationStartedOut:
    pending = pending_out(started.rotation)
    return RotationStartedOut(
        **pending.model_dump(),
        origin=started.origin,  # KEY_GENERATED or KEY_IMPORTED
        replaced_key=key_facts_out(started.replaced) if started.replaced else None,
        on_host=_on_host_out(started.on_host),
        private_key=private_key,
    )


def completed_out(completed: RotationCompleted) -> RotationCompletedOut:
    fetch = completed.fetch
    return RotationCompletedOut(
        project=completed.project,
        deploy_key=key_facts_out(completed.deploy_key),
        retired_key=key_facts_out(completed.retired_key),
        retired_at=completed.retired_at,
        fetch=FetchOut(
            new_commits=fetch.new_commits,
            removed_commits=fetch.removed_commits,
            skipped=fetch.skipped,
            attempted_at=fetch.attempted_at,
            duration=round(fetch.duration, 3),
        ),
        on_host=_on_host_out(completed.on_host),
    )


def aborted_out(aborted: RotationAborted) -> RotationAbortedOut:
    return RotationAbortedOut(
        project=aborted.project,
        discarded_key=key_facts_out(aborted.discarded),
        on_host=_on_host_out(aborted.on_host),
    )


def additional_key_out(info: AdditionalKeyInfo) -> AdditionalKeyOut:
    return AdditionalKeyOut.model_validate(info, from_attributes=True)


def key_rule_out(rule: KeyRuleInfo) -> KeyRuleOut:
    return KeyRuleOut.model_validate(rule, from_attributes=True)


def scanned_out(key: ScannedHostKey) -> ScannedHostKeyOut:
    return ScannedHostKeyOut(
        host=key.host,
        port=key.port,
        key_type=key.key_type,
        fingerprint=key.fingerprint,
        public_key=key.public_line,
    )


def known_host_out(key: TrustedHostKey) -> KnownHostOut:
    return KnownHostOut(
        id=key.id,
        host=key.host,
        port=key.port,
        name=key.name,
        key_type=key.key_type,
        fingerprint=key.fingerprint,
        public_key=key.public_line,
        source=key.source,
        reference=key.reference,
        trusted_at=key.trusted_at,
        overrides_pin=key.overrides_pin,
        overridden=key.overridden,
    )
