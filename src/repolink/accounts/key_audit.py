"""The audit log's entries for changes to keys: a deploy key's rotation, additional keys, key
rules and trusted host keys — one wording for every adapter that makes such a change (the
platform API's key routes, the CLI's key commands), so the log reads the same whoever did it.

Keys are named by SHA256 fingerprint only; no entry holds key material.
"""

from __future__ import annotations

import logging

from repolink.accounts.audit import AuditService
from repolink.auth.principal import Principal
from repolink.knownhosts import TrustedHostKey
from repolink.platform.additional_keys import AdditionalKeyInfo
from repolink.platform.connect import SavedConnection
from repolink.platform.key_rules import KeyRuleInfo
from repolink.platform.prepared_keys import PreparedKey
from repolink.platform.rotation import RotationAborted, RotationCompleted, RotationStarted

log = logging.getLogger(__name__)

CONNECTION_CREATE = "connection.create"
DEPLOY_KEY_PREPARE = "deploy_key.prepare"
CONNECTION_REPLACE = "connection.replace"
KEY_ROTATE = "key.rotate"
KEY_ROTATE_COMPLETE = "key.rotate_complete"
KEY_ROTATE_ABORT = "key.rotate_abort"
ADDITIONAL_KEY_CREATE = "additional_key.create"
ADDITIONAL_KEY_DELETE = "additional_key.delete"
KEY_RULE_CREATE = "key_rule.create"
KEY_RULE_DELETE = "key_rule.delete"
KNOWN_HOST_TRUST = "known_host.trust"
KNOWN_HOST_DELETE = "known_host.delete"


def rotation_started(audit: AuditService, actor: Principal, started: RotationStarted) -> None:
    rotation = started.rotation
    details = {
        "origin": started.origin,
        "key_type": rotation.new_key.key_type,
        "current_key": rotation.current_key.fingerprint_sha256,
    }
    if started.replaced is not None:
        details["replaced_key"] = started.replaced.fingerprint_sha256
    audit.record(
        actor,
        KEY_ROTATE,
        project=rotation.project,
        target=rotation.new_key.fingerprint_sha256,
        details=details,
    )


def rotation_completed(audit: AuditService, actor: Principal, completed: RotationCompleted) -> None:
    audit.record(
        actor,
        KEY_ROTATE_COMPLETE,
        project=completed.project,
        target=completed.deploy_key.fingerprint_sha256,
        details={"retired_key": completed.retired_key.fingerprint_sha256},
    )


def rotation_aborted(audit: AuditService, actor: Principal, aborted: RotationAborted) -> None:
    audit.record(
        actor,
        KEY_ROTATE_ABORT,
        project=aborted.project,
        target=aborted.discarded.fingerprint_sha256,
    )


def additional_key_added(audit: AuditService, actor: Principal, info: AdditionalKeyInfo) -> None:
    audit.record(
        actor,
        ADDITIONAL_KEY_CREATE,
        project=info.project,
        target=info.fingerprint_sha256,
        details={"origin": info.origin, "hostname": info.hostname, "key_type": info.key_type},
    )


def additional_key_removed(audit: AuditService, actor: Principal, info: AdditionalKeyInfo) -> None:
    audit.record(
        actor,
        ADDITIONAL_KEY_DELETE,
        project=info.project,
        target=info.fingerprint_sha256,
        details={"hostname": info.hostname},
    )


def key_rule_added(audit: AuditService, actor: Principal, rule: KeyRuleInfo) -> None:
    audit.record(
        actor, KEY_RULE_CREATE, project=rule.project, target=rule.prefix, details={"key": rule.key}
    )


def key_rule_removed(audit: AuditService, actor: Principal, rule: KeyRuleInfo) -> None:
    audit.record(
        actor, KEY_RULE_DELETE, project=rule.project, target=rule.prefix, details={"key": rule.key}
    )


def host_key_trusted(audit: AuditService, actor: Principal, key: TrustedHostKey) -> None:
    audit.record(
        actor,
        KNOWN_HOST_TRUST,
        target=key.name,
        details={
            "fingerprint": key.fingerprint,
            "key_type": key.key_type,
            "overrides_pin": str(key.overrides_pin).lower(),
        },
    )


def host_key_removed(audit: AuditService, actor: Principal, key: TrustedHostKey) -> None:
    audit.record(
        actor,
        KNOWN_HOST_DELETE,
        target=key.name,
        details={"fingerprint": key.fingerprint, "key_type": key.key_type},
    )


def connection_saved(
    audit: AuditService, actor: Principal, project: str, saved: SavedConnection
) -> None:
    """A connection saved (the API's PUT, the Repository page's Save): its URL and key."""
    info = saved.connection
    audit.record(
        actor,
        CONNECTION_REPLACE if saved.replaced else CONNECTION_CREATE,
        project=project,
        target=info.url,
        details={
            "key": info.deploy_key.fingerprint_sha256,
            "key_origin": info.deploy_key.origin,
        },
    )


def deploy_key_prepared(audit: AuditService, actor: Principal, prepared: PreparedKey) -> None:
    """A deploy key generated before the connection is saved (the next save uses it)."""
    audit.record(
        actor,
        DEPLOY_KEY_PREPARE,
        project=prepared.project,
        target=prepared.key.fingerprint_sha256,
        details={"key_type": prepared.key.key_type},
    )
