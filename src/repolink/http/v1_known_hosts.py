"""The platform API's known hosts (issue 11 §3): the SSH host keys the platform trusts.

Who may: any signed-in user reads the list (host keys are public facts, and a project admin
needs to see whether a host is trusted before connecting to it); only a site admin scans,
trusts or removes — trust is server-wide, and a scan makes the server connect where the caller
says. A scan stores nothing; a trust stores exactly the one key the server presents with the
fingerprint given (``host_key_fingerprint_mismatch`` when it presents others). Both obey the
network policy (no loopback, private or metadata targets unless the operator allowed them,
``host_key_scan_forbidden``), except for this server's own SSH host.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Response

from repolink.accounts import key_audit
from repolink.http.auth import bearer_scheme, principal_route_class
from repolink.http.v1_key_schemas import (
    HostTarget,
    KnownHostOut,
    ScannedHostKeyOut,
    TrustBody,
    TrustedOut,
    known_host_out,
    scanned_out,
)
from repolink.http.v1_projects import API_PREFIX, Caller
from repolink.platform.targets import TargetPolicy, own_hosts
from repolink.store.ids import MAX_ROW_ID

if TYPE_CHECKING:
    from repolink.app import Repolink
    from repolink.http.context import ServiceContext

log = logging.getLogger(__name__)

PREFIX = f"{API_PREFIX}/known-hosts"

KnownHostId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a stored host key's id")]


def build_known_hosts_router(application: Repolink, context: ServiceContext) -> APIRouter:
    """The known-hosts routes under ``/api/v1/known-hosts``."""
    # Writes check the site admin before the body is read: a non-admin learns nothing from it.
    readers = APIRouter(
        prefix=PREFIX,
        route_class=principal_route_class(application),
        dependencies=[bearer_scheme()],
        tags=["known hosts"],
    )
    writers = APIRouter(
        prefix=PREFIX,
        dependencies=[bearer_scheme()],
        route_class=principal_route_class(
            application, require=application.access.require_site_admin
        ),
        tags=["known hosts"],
    )
    service = application.known_hosts
    targets = TargetPolicy(
        application.settings.network_policy, own_hosts=own_hosts(context.ssh_url_base)
    )

    @readers.get("", response_model=list[KnownHostOut])
    def list_known_hosts(principal: Caller) -> list[KnownHostOut]:
        """Every host key the platform trusts: those shipped with repolink (``id`` null) and
        those trusted on this server. Any signed-in user."""
        return [known_host_out(key) for key in service.list_known_hosts()]

    @writers.post("/scan", response_model=list[ScannedHostKeyOut])
    def scan(principal: Caller, body: HostTarget) -> list[ScannedHostKeyOut]:
        """The host keys a server presents, with their fingerprints. Trusts nothing. Site
        admins."""
        keys = service.scan(
            body.host,
            body.port,
            targets=targets,
        )
        return [scanned_out(key) for key in keys]

    @writers.post("", response_model=TrustedOut, status_code=201)
    def trust(principal: Caller, body: TrustBody, response: Response) -> TrustedOut:
        """Trust exactly the key with this SHA256 fingerprint, if the server presents it
        (201; 200 when it was trusted already). Site admins."""
        outcome = service.trust(
            body.host,
            body.port,
            body.fingerprint,
            force=body.force,
            targets=targets,
        )
        if outcome.created:
            key_audit.host_key_trusted(application.audit, principal, outcome.key)
        else:
            response.status_code = 200
        return TrustedOut(created=outcome.created, key=known_host_out(outcome.key))

    @writers.delete("/{key_id}", status_code=204)
    def remove(principal: Caller, key_id: KnownHostId) -> Response:
        """Stop trusting a stored host key. Shipped keys cannot be removed. Site admins."""
        removed = service.remove_by_id(key_id)
        key_audit.host_key_removed(application.audit, principal, removed)
        return Response(status_code=204)

    router = APIRouter()
    router.include_router(readers)
    router.include_router(writers)
    return router
