"""The Repository page's live checks, answered as JSON to its script (admins of the project).

- ``POST …/check-url``: the SSH URL through :mod:`repolink.urls` and the network policy, as
  the save will judge it. An https URL is answered with its precise error and the SSH form to
  use instead (``suggestion``, never one that drops a port). A valid URL's host key: trusted
  already (its fingerprints), this server's own host, or unknown — then, for a site admin (the
  API's rule for scans), the keys the host presents with their SHA256 fingerprints, to trust
  with ``POST …/trust-host``.
- ``POST …/check-key``: the pasted private key through the keys parser: its type and
  fingerprints and the repairs made, or the named error (``key_is_public``, ``key_truncated``,
  ``key_putty_format``, ``key_passphrase_required`` …) with its fix. Nothing of the key is
  ever answered.
- ``POST …/trust-host`` (a form, site admins): trust exactly the shown fingerprint.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from starlette.responses import JSONResponse, Response

from repolink.accounts import key_audit
from repolink.auth.principal import Role
from repolink.errors import KeyFormatError, RepolinkError
from repolink.keys import parse_private_key
from repolink.urls import parse_ssh_url
from repolink.web import paths
from repolink.web.kit import PageKit
from repolink.web.repository import MAX_FIELD_CHARS, MAX_KEY_CHARS, repository_path, target_policy

log = logging.getLogger(__name__)

MAX_PASSPHRASE_CHARS = 1024


def error_answer(error: RepolinkError) -> dict[str, object]:
    return {
        "ok": False,
        "error": {"code": error.reason or error.code, "message": error.message, "hint": error.hint},
    }


def build_repository_check_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = f"{paths.PREFIX}/projects/{{slug}}/settings/repository"

    def check_url(url: str, site_admin: bool) -> dict[str, object]:
        try:
            parsed = parse_ssh_url(url)
            target_policy(kit).check(parsed)
        except RepolinkError as exc:
            refused = error_answer(exc)
            if "suggestion" in exc.context:
                refused["suggestion"] = exc.context["suggestion"]
            return refused
        host, port = parsed.host_port
        answer: dict[str, object] = {"ok": True, "host": host, "port": port}
        trusted = [
            key
            for key in kit.app.known_hosts.list_known_hosts()
            if key.host == host and key.port == port and not key.overridden
        ]
        # This server's own host is trusted like any other: ssh verifies every host key.
        answer["own_host"] = target_policy(kit).is_own_host(host, port)
        if trusted:
            answer["host_key"] = "trusted"
            answer["fingerprints"] = [key.fingerprint for key in trusted]
        else:
            answer["host_key"] = "unknown"
        if not trusted and site_admin:
            try:
                scanned = kit.app.known_hosts.scan(host, port, targets=target_policy(kit))
            except RepolinkError as exc:
                answer["scan_error"] = error_answer(exc)["error"]
            else:
                answer["presented"] = [
                    {"key_type": key.key_type, "fingerprint": key.fingerprint} for key in scanned
                ]
        return answer

    @router.post(f"{base}/check-url", include_in_schema=False)
    async def url_check(request: Request, slug: str, url: str = Form("")) -> Response:
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
        answer = await kit.call(check_url, url[:MAX_FIELD_CHARS], principal.site_admin)
        return JSONResponse(answer)

    @router.post(f"{base}/check-key", include_in_schema=False)
    async def key_check(
        request: Request, slug: str, private_key: str = Form(""), passphrase: str = Form("")
    ) -> Response:
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
        if len(private_key) > MAX_KEY_CHARS or len(passphrase) > MAX_PASSPHRASE_CHARS:
            return JSONResponse(
                {
                    "ok": False,
                    "error": {
                        "code": "key_too_long",
                        "message": f"the pasted text is longer than {MAX_KEY_CHARS} characters",
                        "hint": "paste the private key file alone",
                    },
                }
            )
        try:
            parsed = await kit.call(parse_private_key, private_key, passphrase or None)
        except KeyFormatError as exc:
            return JSONResponse(error_answer(exc))
        public = parsed.key.public_key
        return JSONResponse(
            {
                "ok": True,
                "key_type": public.key_type,
                "fingerprint_sha256": public.sha256_fingerprint,
                "fingerprint_md5": public.md5_fingerprint,
                "repairs": list(parsed.repairs),
            }
        )

    @router.post(f"{base}/trust-host", include_in_schema=False)
    async def trust_host(
        request: Request,
        slug: str,
        host: str = Form(""),
        port: int = Form(22),
        fingerprint: str = Form(""),
        url: str = Form(""),
    ) -> Response:
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
        kit.app.access.require_site_admin(principal)
        outcome = await kit.call(
            kit.app.known_hosts.trust,
            host[:300],
            port,
            fingerprint[:200],
            targets=target_policy(kit),
        )
        if outcome.created:
            await kit.call(key_audit.host_key_trusted, kit.app.audit, principal, outcome.key)
        notice = f"{outcome.key.name} {outcome.key.fingerprint} is trusted."
        # Back to the form with the URL that was being typed (nothing is saved yet).
        back = repository_path(slug)
        if url:
            back += "?" + urlencode({"url": url[:MAX_FIELD_CHARS]})
        return kit.redirect(back, notice=notice)

    return router
