"""The platform API's routes for a project's keys (issue 11 §3): the keys with their age and
last use, the deploy key's rotation, additional keys and key rules.

Each route authenticates (:func:`~repolink.http.auth.principal_route_class`, before the body
is read), asks :class:`~repolink.accounts.AccessService` for the project at the role it needs —
a viewer reads, a project admin changes (404 for a project the caller cannot see, 403 below the
role) — calls the service the CLI calls, records what changed in the audit log, and answers.
The errors are the services' own, with the CLI's codes.

A private key goes into one answer only: the rotation that generated it, when the caller asked
with ``return_private_key`` (and that answer is marked ``Cache-Control: no-store``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Response
from fastapi.routing import APIRoute

from repolink.accounts import key_audit
from repolink.auth.principal import Principal, Role
from repolink.errors import NotFound
from repolink.http.auth import bearer_scheme, principal_route_class
from repolink.http.v1_key_schemas import (
    AdditionalKeyCreate,
    AdditionalKeyOut,
    KeyRuleCreate,
    KeyRuleOut,
    KeysOut,
    RotateBody,
    RotationAbortedOut,
    RotationCompletedOut,
    RotationStartedOut,
    aborted_out,
    additional_key_out,
    completed_out,
    key_out,
    key_rule_out,
    pending_out,
    started_out,
)
from repolink.http.v1_projects import API_PREFIX, Caller, ProjectSlug
from repolink.http.v1_schemas import KeyGeneration, chosen_key
from repolink.platform.rotation import PendingRotation

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext

log = logging.getLogger(__name__)

PREFIX = f"{API_PREFIX}/projects/{{slug}}"

ItemId = Annotated[
    str, Path(max_length=2048, description="the id (or a key's fingerprint, a rule's prefix)")
]


def build_keys_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """Every key route of a project, under ``/api/v1/projects/{slug}``."""
    route_class = principal_route_class(application)
    router = APIRouter(prefix=PREFIX, route_class=route_class, dependencies=[bearer_scheme()])
    router.include_router(_key_routes(application, route_class))
    router.include_router(_additional_key_routes(application, route_class))
    router.include_router(_key_rule_routes(application, route_class))
    return router


def _project(application: Repolink, principal: Principal, slug: str, role: Role) -> str:
    """The slug of the project ``principal`` may act on with ``role`` (404 / 403 otherwise)."""
    return application.access.project(principal, slug, role).slug


def _key_routes(application: Repolink, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class, tags=["keys"])

    @router.get("/keys", response_model=KeysOut)
    def list_keys(slug: ProjectSlug, principal: Caller) -> KeysOut:
        """The project's keys (deploy key, pending and retired ones, additional keys) with
        fingerprints, age and last use, and the pending rotation if one was started."""
        project = _project(application, principal, slug, Role.VIEWER)
        keys = application.keys.project_keys(project)
        pending = _pending(application, project)
        return KeysOut(
            items=[key_out(key) for key in keys],
            pending_rotation=pending_out(pending) if pending is not None else None,
        )

    @router.post("/keys/rotate", response_model=RotationStartedOut, status_code=201)
    def rotate(
        slug: ProjectSlug,
        principal: Caller,
        response: Response,
        body: RotateBody | None = None,
    ) -> RotationStartedOut:
        """Start a rotation: a new key (generated, or the uploaded ``private_key``) becomes the
        pending key beside the deploy key, which keeps working. Add its public half to the
        repository, then complete the rotation (or abort it)."""
        body = body if body is not None else RotateBody()
        project = _project(application, principal, slug, Role.ADMIN)
        imported = chosen_key(body.private_key, body.passphrase, body.generate, required=False)
        generate = body.generate or KeyGeneration()
        started = application.deploy_keys.start_rotation(
            project,
            key=imported,
            key_type=generate.type,
            bits=generate.bits,
            replace_pending=body.replace_pending,
            keep_private_key=body.return_private_key,
        )
        key_audit.rotation_started(application.audit, principal, started)
        private_text: str | None = None
        if started.private_key is not None:
            private_text = started.private_key.to_openssh().decode("ascii")
            # The one answer holding a private key: no cache along the way may keep it.
            response.headers["Cache-Control"] = "no-store"
        return started_out(started, private_text)

    @router.post("/keys/rotate/complete", response_model=RotationCompletedOut)
    def complete_rotation(slug: ProjectSlug, principal: Caller) -> RotationCompletedOut:
        """Fetch with the pending key; only if that works, it becomes the deploy key and the
        old one is retired (its private half erased). A failed fetch answers its diagnosis
        and changes nothing."""
        project = _project(application, principal, slug, Role.ADMIN)
        completed = application.deploy_keys.complete_rotation(project)
        key_audit.rotation_completed(application.audit, principal, completed)
        return completed_out(completed)

    @router.post("/keys/rotate/abort", response_model=RotationAbortedOut)
    def abort_rotation(slug: ProjectSlug, principal: Caller) -> RotationAbortedOut:
        """Discard the pending key; the deploy key stays."""
        project = _project(application, principal, slug, Role.ADMIN)
        aborted = application.deploy_keys.abort_rotation(project)
        key_audit.rotation_aborted(application.audit, principal, aborted)
        return aborted_out(aborted)

    return router


def _pending(application: Repolink, project: str) -> PendingRotation | None:
    try:
        return application.deploy_keys.pending_rotation(project)
    except NotFound as exc:
        # A project without a connection has keys (additional ones) but no rotation to show.
        if exc.code == "connection_not_found":
            return None
        raise


def _additional_key_routes(application: Repolink, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(prefix="/additional-keys", route_class=route_class, tags=["keys"])

    @router.get("", response_model=list[AdditionalKeyOut])
    def list_additional_keys(slug: ProjectSlug, principal: Caller) -> list[AdditionalKeyOut]:
        """The project's additional keys, oldest first."""
        project = _project(application, principal, slug, Role.VIEWER)
        return [additional_key_out(info) for info in application.additional_keys.list_keys(project)]

    @router.post("", response_model=AdditionalKeyOut, status_code=201)
    def add_additional_key(
        slug: ProjectSlug, principal: Caller, body: AdditionalKeyCreate
    ) -> AdditionalKeyOut:
        """Add an additional key for ``hostname`` (blank: any host): generated, or the
        uploaded ``private_key``. Its private half is never answered."""
        project = _project(application, principal, slug, Role.ADMIN)
        imported = chosen_key(body.private_key, body.passphrase, body.generate)
        generate = body.generate or KeyGeneration()
        info = application.additional_keys.add_key(
            project, imported, hostname=body.hostname, key_type=generate.type, bits=generate.bits
        )
        key_audit.additional_key_added(application.audit, principal, info)
        return additional_key_out(info)

    # ":path": a SHA256 fingerprint may hold '/', which arrives decoded.
    @router.delete("/{key_id:path}", status_code=204)
    def delete_additional_key(slug: ProjectSlug, key_id: ItemId, principal: Caller) -> Response:
        """Remove an additional key (by id or fingerprint) and its key pair; refused while
        key rules point at it."""
        project = _project(application, principal, slug, Role.ADMIN)
        info = application.additional_keys.remove_key(project, key_id)
        key_audit.additional_key_removed(application.audit, principal, info)
        return Response(status_code=204)

    return router


def _key_rule_routes(application: Repolink, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(prefix="/key-rules", route_class=route_class, tags=["keys"])

    @router.get("", response_model=list[KeyRuleOut])
    def list_key_rules(slug: ProjectSlug, principal: Caller) -> list[KeyRuleOut]:
        """The project's key rules, longest prefix (tried first) first."""
        project = _project(application, principal, slug, Role.VIEWER)
        return [key_rule_out(rule) for rule in application.key_rules.list_rules(project)]

    @router.post("", response_model=KeyRuleOut, status_code=201)
    def add_key_rule(slug: ProjectSlug, principal: Caller, body: KeyRuleCreate) -> KeyRuleOut:
        """Point a URL prefix at a key: ``deploy`` or an additional key."""
        project = _project(application, principal, slug, Role.ADMIN)
        rule = application.key_rules.add_rule(project, body.prefix, body.key)
        key_audit.key_rule_added(application.audit, principal, rule)
        return key_rule_out(rule)

    # ":path": a prefix holds '/', which arrives decoded.
    @router.delete("/{rule_id:path}", status_code=204)
    def delete_key_rule(slug: ProjectSlug, rule_id: ItemId, principal: Caller) -> Response:
        """Remove a key rule (by id, or by its prefix URL-encoded)."""
        project = _project(application, principal, slug, Role.ADMIN)
        rule = application.key_rules.remove_rule(project, rule_id)
        key_audit.key_rule_removed(application.audit, principal, rule)
        return Response(status_code=204)

    return router
