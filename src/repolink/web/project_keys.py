"""Project settings → SSH keys (issue 12): the deploy key, a pending or retired one, the
additional keys (each for a hostname) and the key rules, with fingerprints (never cut), age,
last use and the "unused" and "older than 180 days" badges.

Admins rotate the deploy key (start: a new ed25519 key pending beside the deploy key, which
keeps working; complete: proven by a fetch first, its diagnosis beside the form when it fails;
abort), add an additional key and a key rule, and remove them. Every removal and the abort
have a confirmation step of their own: the button opens a page that asks (no script needed),
whose button does it. Each action calls the service the API calls and records the audit entry
the API records (:mod:`repolink.accounts.key_audit`). A private key is never on a page: the
rotation's new key is generated and kept, and only its public half is shown.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from repolink.accounts import key_audit
from repolink.auth.principal import Role
from repolink.errors import NotFound, RepolinkError
from repolink.web import paths
from repolink.web.confirm import Question, asked_about, confirm_project_page
from repolink.web.forms import FormErrors
from repolink.web.kit import PageKit
from repolink.web.projects import KEYS, open_project

# Errors that are not about a form: their own page (404, 403).
PAGE_ERRORS = ("project_not_found", "role_required")
RULE_FIELDS = {
    "key_rule_prefix_invalid": "prefix",
    "key_rule_exists": "prefix",
    "additional_key_not_found": "key",
    "fingerprint_invalid": "key",
}


def _gone(what: str) -> NotFound:
    return NotFound(
        f"{what}_not_found",
        f"there is no such {what.replace('_', ' ')} in this project",
        "go back to the project's SSH keys and pick one from the list",
    )


def build_project_key_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = KEYS.route

    def keys_path(slug: str, *parts: str) -> str:
        return paths.project(slug, "settings", "keys", *parts)

    async def show(
        request: Request,
        slug: str,
        errors: FormErrors | None = None,
        status: int = 200,
        **form: str,
    ) -> Response:
        opened = await open_project(kit, request, slug, KEYS.role)
        project = opened.project
        keys = await kit.call(kit.app.keys.project_keys, project.slug)
        additional = await kit.call(kit.app.additional_keys.list_keys, project.slug)
        rules = await kit.call(kit.app.key_rules.list_rules, project.slug)
        return kit.page(
            request,
            "projects/keys.html",
            title=f"SSH keys · {project.name}",
            status=status,
            **opened.layout,
            keys=keys,
            additional={info.key_record_id: info for info in additional},
            additional_keys=additional,
            rules=rules,
            pending=any(key.state == "pending" for key in keys),
            errors=errors or FormErrors(),
            form=form,
        )

    async def confirm(request: Request, slug: str, asked: Question) -> Response:
        return await confirm_project_page(kit, request, slug, KEYS, asked)

    async def admin(request: Request, slug: str) -> str:
        principal = kit.principal(request)
        project = await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
        return project.slug

    def failed(
        exc: RepolinkError, fields: dict[str, str] | None = None, default: str = "_form"
    ) -> FormErrors:
        """The error beside its field; one about the project itself is its own page."""
        if exc.code in PAGE_ERRORS:
            raise exc
        errors = FormErrors()
        errors.add(exc, fields, default)
        return errors

    @router.get(base, include_in_schema=False)
    async def page(request: Request, slug: str) -> Response:
        return await show(request, slug)

    @router.post(f"{base}/rotate", include_in_schema=False)
    async def rotate(request: Request, slug: str) -> Response:
        project = await admin(request, slug)
        try:
            started = await kit.call(kit.app.deploy_keys.start_rotation, project)
        except RepolinkError as exc:
            return await show(request, slug, failed(exc), status=kit.status_of(exc))
        key_audit.rotation_started(kit.app.audit, kit.principal(request), started)
        new_key = started.rotation.new_key
        return kit.redirect(
            keys_path(project),
            notice=f"Rotation started: add the new key {new_key.fingerprint_sha256} to the "
            "repository, then complete the rotation.",
        )

    @router.post(f"{base}/rotate/complete", include_in_schema=False)
    async def complete(request: Request, slug: str) -> Response:
        project = await admin(request, slug)
        try:
            completed = await kit.call(kit.app.deploy_keys.complete_rotation, project)
        except RepolinkError as exc:
            return await show(request, slug, failed(exc), status=kit.status_of(exc))
        key_audit.rotation_completed(kit.app.audit, kit.principal(request), completed)
        return kit.redirect(
            keys_path(project),
            notice=f"Rotation complete: {completed.deploy_key.fingerprint_sha256} is the deploy "
            "key now; the old key is retired.",
        )

    @router.get(f"{base}/rotate/abort", include_in_schema=False)
    async def abort_question(request: Request, slug: str) -> Response:
        return await confirm(
            request,
            slug,
            Question(
                "Abort the rotation? The pending key is discarded; the deploy key stays.",
                action=keys_path(slug, "rotate", "abort"),
                button="Abort rotation",
            ),
        )

    @router.post(f"{base}/rotate/abort", include_in_schema=False)
    async def abort(request: Request, slug: str) -> Response:
        project = await admin(request, slug)
        try:
            aborted = await kit.call(kit.app.deploy_keys.abort_rotation, project)
        except RepolinkError as exc:
            return await show(request, slug, failed(exc), status=kit.status_of(exc))
        key_audit.rotation_aborted(kit.app.audit, kit.principal(request), aborted)
        return kit.redirect(keys_path(project), notice="Rotation aborted: the deploy key stays.")

    @router.post(f"{base}/additional", include_in_schema=False)
    async def add_additional(request: Request, slug: str, hostname: str = Form("")) -> Response:
        project = await admin(request, slug)
        try:
            info = await kit.call(kit.app.additional_keys.add_key, project, hostname=hostname)
        except RepolinkError as exc:
            errors = failed(exc, default="hostname")
            return await show(
                request, slug, errors, status=kit.status_of(exc), hostname=hostname[:300]
            )
        key_audit.additional_key_added(kit.app.audit, kit.principal(request), info)
        return kit.redirect(
            keys_path(project),
            notice=f"Additional key {info.fingerprint_sha256} added for {info.host or 'any host'}.",
        )

    @router.get(f"{base}/additional/{{additional_key_id}}/delete", include_in_schema=False)
    async def additional_question(request: Request, slug: str, additional_key_id: str) -> Response:
        project = await admin(request, slug)
        found = asked_about(
            await kit.call(kit.app.additional_keys.list_keys, project),
            lambda info: info.id == additional_key_id,
            _gone("additional_key"),
        )
        return await confirm(
            request,
            slug,
            Question(
                f"Delete the additional key for {found.host or 'any host'}?",
                action=keys_path(project, "additional", additional_key_id, "delete"),
                button="Delete key",
                subject=found.fingerprint_sha256,
                then="Its key pair is erased.",
            ),
        )

    @router.post(f"{base}/additional/{{additional_key_id}}/delete", include_in_schema=False)
    async def delete_additional(request: Request, slug: str, additional_key_id: str) -> Response:
        project = await admin(request, slug)
        try:
            info = await kit.call(kit.app.additional_keys.remove_key, project, additional_key_id)
        except RepolinkError as exc:
            return await show(request, slug, failed(exc), status=kit.status_of(exc))
        key_audit.additional_key_removed(kit.app.audit, kit.principal(request), info)
        return kit.redirect(
            keys_path(project), notice=f"Additional key {info.fingerprint_sha256} deleted."
        )

    @router.post(f"{base}/rules", include_in_schema=False)
    async def add_rule(
        request: Request, slug: str, prefix: str = Form(""), key: str = Form("deploy")
    ) -> Response:
        project = await admin(request, slug)
        try:
            rule = await kit.call(kit.app.key_rules.add_rule, project, prefix, key)
        except RepolinkError as exc:
            errors = failed(exc, RULE_FIELDS)
            return await show(request, slug, errors, status=kit.status_of(exc), prefix=prefix[:300])
        key_audit.key_rule_added(kit.app.audit, kit.principal(request), rule)
        return kit.redirect(keys_path(project), notice=f"Key rule for {rule.prefix} added.")

    @router.get(f"{base}/rules/{{key_rule_id}}/delete", include_in_schema=False)
    async def rule_question(request: Request, slug: str, key_rule_id: str) -> Response:
        project = await admin(request, slug)
        found = asked_about(
            await kit.call(kit.app.key_rules.list_rules, project),
            lambda rule: rule.id == key_rule_id,
            _gone("key_rule"),
        )
        return await confirm(
            request,
            slug,
            Question(
                "Delete the key rule for this URL prefix?",
                action=keys_path(project, "rules", key_rule_id, "delete"),
                button="Delete rule",
                subject=found.prefix,
                then="URLs under it get the key the other rules or the deploy key give them.",
            ),
        )

    @router.post(f"{base}/rules/{{key_rule_id}}/delete", include_in_schema=False)
    async def delete_rule(request: Request, slug: str, key_rule_id: str) -> Response:
        project = await admin(request, slug)
        try:
            rule = await kit.call(kit.app.key_rules.remove_rule, project, key_rule_id)
        except RepolinkError as exc:
            return await show(request, slug, failed(exc), status=kit.status_of(exc))
        key_audit.key_rule_removed(kit.app.audit, kit.principal(request), rule)
        return kit.redirect(keys_path(project), notice=f"Key rule for {rule.prefix} deleted.")

    return router
