"""Known hosts (site-wide, issue 12): every host key the platform trusts (shipped with
repolink, or trusted on this server); site admins scan a host (host, port; under the network
policy, as the API), trust exactly a fingerprint the scan showed, and remove a key after a
confirmation page of its own. Anyone signed in reads the list, as the API's GET; the writes
are the site admin's, as the API's, and audited as the API's (:mod:`repolink.accounts.key_audit`).
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.accounts import key_audit
from repolink.errors import NotFound, RepolinkError
from repolink.knownhosts import TrustedHostKey
from repolink.platform.targets import TargetPolicy, own_hosts
from repolink.web import paths
from repolink.web.confirm import Question, confirm_page
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit

KNOWN_HOSTS = f"{paths.PREFIX}/known-hosts"
SCAN_FIELDS = {"port_invalid": "port"}
MAX_ID_DIGITS = 15


def build_known_host_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)

    def targets() -> TargetPolicy:
        return TargetPolicy(kit.app.settings.network_policy, own_hosts=own_hosts(kit.ssh_url_base))

    async def show(
        request: Request,
        *,
        errors: FormErrors | None = None,
        scanned: list[object] | None = None,
        host: str = "",
        port: str = "22",
        status: int = 200,
    ) -> Response:
        principal = kit.principal(request)
        keys = await kit.call(kit.app.known_hosts.list_known_hosts)
        return kit.page(
            request,
            "known_hosts.html",
            title="Known hosts",
            status=status,
            keys=keys,
            admin=principal.site_admin,
            errors=errors or FormErrors(),
            scanned=scanned or [],
            host=host,
            port=port,
        )

    async def site_admin(request: Request) -> None:
        await kit.call(kit.app.access.require_site_admin, kit.principal(request))

    def parse_port(text: str) -> int:
        return int(text) if text.strip().isdigit() and len(text.strip()) < 6 else -1

    @router.get(KNOWN_HOSTS, include_in_schema=False)
    async def page(request: Request) -> Response:
        return await show(request)

    @router.post(f"{KNOWN_HOSTS}/scan", include_in_schema=False)
    async def scan(request: Request, host: str = Form(""), port: str = Form("22")) -> Response:
        await site_admin(request)
        try:
            found = await kit.call(
                kit.app.known_hosts.scan, host.strip(), parse_port(port), targets=targets()
            )
        except RepolinkError as exc:
            errors = FormErrors()
            errors.add(exc, SCAN_FIELDS, "host")
            return await show(
                request, errors=errors, host=host[:300], port=port[:10], status=kit.status_of(exc)
            )
        return await show(request, scanned=list(found), host=host[:300], port=port[:10])

    @router.post(KNOWN_HOSTS, include_in_schema=False)
    async def trust(
        request: Request, host: str = Form(""), port: str = Form("22"), fingerprint: str = Form("")
    ) -> Response:
        await site_admin(request)
        try:
            outcome = await kit.call(
                kit.app.known_hosts.trust,
                host.strip(),
                parse_port(port),
                fingerprint,
                targets=targets(),
            )
        except RepolinkError as exc:
            errors = FormErrors()
            errors.add(exc, SCAN_FIELDS, "host")
            return await show(
                request, errors=errors, host=host[:300], port=port[:10], status=kit.status_of(exc)
            )
        if outcome.created:
            await kit.call(
                key_audit.host_key_trusted, kit.app.audit, kit.principal(request), outcome.key
            )
        return kit.redirect(
            KNOWN_HOSTS, notice=f"Trusted {outcome.key.fingerprint} for {outcome.key.name}."
        )

    async def stored(known_host_id: str) -> TrustedHostKey:
        if known_host_id.isdigit() and len(known_host_id) <= MAX_ID_DIGITS:
            for key in await kit.call(kit.app.known_hosts.list_known_hosts):
                if key.id == int(known_host_id):
                    return key
        raise NotFound(
            "known_host_not_found",
            "there is no such trusted host key",
            "go back to Known hosts and pick one from the list",
        )

    @router.get(f"{KNOWN_HOSTS}/{{known_host_id}}/delete", include_in_schema=False)
    async def remove_question(request: Request, known_host_id: str) -> Response:
        await site_admin(request)
        key = await stored(known_host_id)
        return confirm_page(
            kit,
            request,
            Question(
                f"Stop trusting this key of {key.name}?",
                action=f"{KNOWN_HOSTS}/{known_host_id}/delete",
                button="Remove key",
                subject=key.fingerprint,
                then=f"Fetches from {key.name} are refused until a key of it is trusted again.",
            ),
            heading="Known hosts",
            back=KNOWN_HOSTS,
        )

    @router.post(f"{KNOWN_HOSTS}/{{known_host_id}}/delete", include_in_schema=False)
    async def remove(request: Request, known_host_id: str) -> Response:
        await site_admin(request)
        await stored(known_host_id)
        removed = await kit.call(kit.app.known_hosts.remove_by_id, int(known_host_id))
        await kit.call(key_audit.host_key_removed, kit.app.audit, kit.principal(request), removed)
        return kit.redirect(
            KNOWN_HOSTS, notice=f"{removed.fingerprint} for {removed.name} is trusted no more."
        )

    return router
