"""Project → Settings → Repository: the page the Valohai article walks through.

Everyone on the project sees the connection: its URL, its state (ok, or the diagnosis with its
fix), the deploy key's public half and fingerprints, and the ``repolink-<project>.pub``
download. Admins get the forms: the SSH URL with either a generated key (type selector) or a
pasted private key, saved as the API's ``PUT …/repository`` saves it (same service calls, same
network policy, same audit entry) with the first fetch queued. A generated key's private half
can be taken once, as the answer to that very save (an attachment, ``no-store``) — the API's
``return_private_key`` — and is never served again. Members fetch and run the doctor — on
demand, a POST answered with the page and its checklist (the script puts the checklist in
place); no GET runs it.

The page's script listens to :func:`state` (JSON, as an event stream: :mod:`repolink.web.live`;
polled where the stream fails) so the state after a save or a fetch appears without a reload —
while a fetch runs, its progress as git reports it (phase, percent), then its outcome: the new
commits, or the diagnosis with its fix; the live checks of the URL and of a pasted key are in
:mod:`repolink.web.repository_checks`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.responses import JSONResponse, Response

from repolink.accounts import key_audit
from repolink.auth.principal import Principal, Role
from repolink.errors import NotFound, RepolinkError, ValidationError
from repolink.keys import KEY_TYPES, PrivateKey
from repolink.platform.connect import SavedConnection
from repolink.platform.connections import ConnectionInfo
from repolink.platform.fetch_progress import RunProgress
from repolink.platform.targets import TargetPolicy, own_hosts
from repolink.urls import parse_ssh_url
from repolink.web import live, paths
from repolink.web.forms import FieldError, FormErrors
from repolink.web.kit import PageKit
from repolink.web.projects import REPOSITORY, project_nav

log = logging.getLogger(__name__)

# Which field of the save form each error is shown beside (anything else: the form).
SAVE_FIELDS = {
    "invalid_url": "url",
    "repository_url_forbidden": "url",
    "invalid_private_key": "private_key",
    "key_type_invalid": "key_type",
    "key_choice_required": "private_key",
}
MAX_KEY_CHARS = 64 * 1024
MAX_FIELD_CHARS = 2048
PRIVATE_KEY_TYPE = "application/x-pem-file"


def repository_path(slug: str, *parts: str) -> str:
    return paths.project(slug, "settings", "repository", *parts)


def field_error(errors: FormErrors, error: RepolinkError, field: str) -> None:
    """``error`` beside ``field``, under its precise code (``url_https``, ``key_is_public``)
    rather than the umbrella one (``invalid_url``)."""
    errors[field] = FieldError(error.reason or error.code, error.message, error.hint)


def target_policy(kit: PageKit) -> TargetPolicy:
    """The network policy as the API applies it (this server's own Git host allowed)."""
    return TargetPolicy(kit.app.settings.network_policy, own_hosts=own_hosts(kit.ssh_url_base))


def access_key_page(kit: PageKit, url: str) -> str | None:
    """The built-in host's access-key page of ``url``'s repository when ``url`` is on this
    server's own Git host; else ``None``."""
    try:
        parsed = parse_ssh_url(url)
    except RepolinkError:
        return None
    host, port = parsed.host_port
    if not target_policy(kit).is_own_host(host, port):
        return None
    repository = parsed.path.strip("/").removesuffix(".git")
    if repository.count("/") != 1:
        return None
    workspace, slug = repository.split("/")
    return paths.host_repository(workspace, slug, "access-keys")


def state_of(
    connection: ConnectionInfo | None, latest: Any = None, progress: RunProgress | None = None
) -> dict[str, object]:
    """What the page's script shows: the connection's state, the latest fetch run — while it
    runs, the ``progress`` git reports (phase, percent), once finished its outcome (the new
    commits, or its error; the connection's diagnosis has the fix)."""
    if connection is None:
        return {"connected": False, "state": "unknown"}
    answer: dict[str, object] = {
        "connected": True,
        "state": connection.state,
        "error": None,
        "fetched_at": connection.fetched_at.isoformat() if connection.fetched_at else None,
        "commits": connection.commits,
        "refs": connection.refs,
    }
    if connection.state == "failed" and connection.error_code:
        answer["error"] = {
            "code": connection.error_reason or connection.error_code,
            "message": connection.error_message or "",
            "hint": connection.error_hint or "",
        }
    if latest is not None:
        answer["fetch"] = {
            "id": latest.id,
            "state": latest.state,
            "trigger": latest.trigger,
            "finished": latest.finished,
            "new_commits": latest.new_commits,
            "error_code": latest.error_code,
            "progress": (
                {**progress.as_dict(), "line": progress.line} if progress is not None else None
            ),
        }
    return answer


def build_repository_pages(kit: PageKit) -> APIRouter:
    router = APIRouter(route_class=kit.signed_in)
    base = f"{paths.PREFIX}/projects/{{slug}}/settings/repository"

    def connection_or_none(slug: str) -> ConnectionInfo | None:
        try:
            return kit.app.connections.connection_info(slug)
        except NotFound as exc:
            if exc.code != "connection_not_found":
                raise
            return None

    async def show(
        request: Request,
        slug: str,
        *,
        errors: FormErrors | None = None,
        form: dict[str, str] | None = None,
        doctor: Any = None,
        status: int = 200,
    ) -> Response:
        principal = kit.principal(request)
        project = await kit.call(kit.app.access.project, principal, slug, REPOSITORY.role)
        role = await kit.call(kit.app.access.role, principal, slug)
        connection = await kit.call(connection_or_none, project.slug)
        is_admin = role.allows(Role.ADMIN)
        prepared = await kit.call(kit.app.connections.prepared_key, project.slug)
        values = form or {}
        typed = request.query_params.get("url", "")[:MAX_FIELD_CHARS]
        url = values.get("url", typed or (connection.url if connection else ""))
        return kit.page(
            request,
            "projects/repository.html",
            title=f"Repository · {project.name}",
            status=status,
            project=project,
            role=role,
            nav=project_nav(project.slug, role),
            connection=connection,
            state=state_of(connection),
            access_key_page=access_key_page(kit, connection.url) if connection else None,
            errors=errors or FormErrors(),
            url=url,
            key_source=values.get("key_source", "generate"),
            key_type=values.get("key_type", "ed25519"),
            key_types=KEY_TYPES,
            doctor=doctor,
            prepared=prepared.key if prepared is not None and is_admin else None,
            is_admin=is_admin,
            is_member=role.allows(Role.MEMBER),
            site_admin=principal.site_admin,
        )

    @router.get(base, include_in_schema=False)
    async def page(request: Request, slug: str) -> Response:
        return await show(request, slug)

    @router.post(base, include_in_schema=False)
    async def save(
        request: Request,
        slug: str,
        url: str = Form(""),
        key_source: str = Form("generate"),
        key_type: str = Form("ed25519"),
        private_key: str = Form(""),
        passphrase: str = Form(""),
        download: str = Form(""),
    ) -> Response:
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
        form = {"url": url[:MAX_FIELD_CHARS], "key_source": key_source, "key_type": key_type}
        errors = FormErrors()
        try:
            saved = await kit.call(
                _save, kit, principal, slug, url, key_source, key_type, private_key, passphrase
            )
        except RepolinkError as exc:
            if exc.code in ("project_not_found", "role_required"):
                raise
            field = SAVE_FIELDS.get(exc.code, "_form")
            field_error(errors, exc, field)
            return await show(request, slug, errors=errors, form=form, status=kit.status_of(exc))
        if saved.private_key is not None and download:
            return private_key_download(slug, saved.private_key)
        notice = "Saved. The first fetch is queued."
        if saved.prepared:
            notice = "Saved with the generated key. The first fetch is queued."
        elif saved.private_key is not None:
            notice = "Saved with a new key. Add it as a read-only access key, then fetch."
        return kit.redirect(repository_path(slug), notice=notice)

    @router.post(f"{base}/generate", include_in_schema=False)
    async def generate(
        request: Request,
        slug: str,
        key_type: str = Form("ed25519"),
        download: str = Form(""),
    ) -> Response:
        """Generate SSH key, before the URL is known (the article's first step): the
        project's prepared deploy key, which the next Save uses."""
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
        try:
            if key_type not in KEY_TYPES:
                raise _type_invalid()
            prepared = await kit.call(kit.app.connections.prepare_key, slug, key_type=key_type)
        except RepolinkError as exc:
            if exc.code in ("project_not_found", "role_required"):
                raise
            errors = FormErrors()
            field_error(errors, exc, "key_type" if exc.code == "key_type_invalid" else "_form")
            return await show(request, slug, errors=errors, status=kit.status_of(exc))
        await kit.call(key_audit.deploy_key_prepared, kit.app.audit, principal, prepared)
        if download and prepared.private_key is not None:
            return private_key_download(slug, prepared.private_key)
        return kit.redirect(
            repository_path(slug),
            notice="Generated a new key. Add it as a read-only access key, then paste the "
            "SSH URL and Save.",
        )

    @router.get(f"{base}/public-key", include_in_schema=False)
    async def public_key(request: Request, slug: str) -> Response:
        """The deploy key's public half; ``?key=generated``: the prepared key's (admins)."""
        principal = kit.principal(request)
        project = await kit.call(kit.app.access.project, principal, slug, Role.VIEWER)
        if request.query_params.get("key") == "generated":
            await kit.call(kit.app.access.project, principal, slug, Role.ADMIN)
            prepared = await kit.call(kit.app.connections.prepared_key, project.slug)
            if prepared is None:
                raise _no_prepared_key()
            line = prepared.key.public_key
        else:
            connection = await kit.call(kit.app.connections.connection_info, project.slug)
            line = connection.deploy_key.public_key
        return Response(
            line + "\n",
            media_type="text/plain",
            headers={"Content-Disposition": f'attachment; filename="repolink-{project.slug}.pub"'},
        )

    @router.get(f"{base}/state", include_in_schema=False)
    async def state(request: Request, slug: str) -> Response:
        """The connection's state and its latest fetch; asked for ``text/event-stream``,
        sent again each time it changes (:mod:`repolink.web.live`)."""
        principal = kit.principal(request)
        project = await kit.call(kit.app.access.project, principal, slug, Role.VIEWER)

        async def read() -> dict[str, object]:
            await kit.call(kit.app.access.project, principal, project.slug, Role.VIEWER)
            connection = await kit.call(connection_or_none, project.slug)
            latest = progress = None
            if connection is not None:
                runs = await kit.call(kit.app.fetch_requests.history, project.slug, limit=1)
                latest = runs[0] if runs else None
            if latest is not None and not latest.finished:
                progress = await kit.call(kit.app.fetch_progress.of_run, latest.id)
            return state_of(connection, latest, progress)

        if live.wants_stream(request):
            return live.event_stream(request, kit.app.changes, project.id, "state", read)
        return JSONResponse(await read())

    @router.post(f"{base}/fetch", include_in_schema=False)
    async def fetch(request: Request, slug: str) -> Response:
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.MEMBER)
        run = await kit.call(kit.app.fetch_requests.request, slug, trigger="web", actor=principal)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"id": run.id, "state": run.state}, status_code=202)
        return kit.redirect(repository_path(slug), notice="A fetch is queued.")

    @router.post(f"{base}/doctor", include_in_schema=False)
    async def doctor(request: Request, slug: str) -> Response:
        # On demand only (a form; the script loads the answer's checklist in place): the
        # doctor connects to the host, which no GET of the page does.
        principal = kit.principal(request)
        await kit.call(kit.app.access.project, principal, slug, Role.MEMBER)
        report = await kit.call(kit.app.doctor.check_project, slug)
        return await show(request, slug, doctor=report)

    return router


def private_key_download(slug: str, key: PrivateKey) -> Response:
    """The one answer that ever holds a generated private key: a download, kept by neither
    the browser's cache nor a proxy."""
    return Response(
        key.to_openssh(),
        media_type=PRIVATE_KEY_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="repolink-{slug}"',
            "Cache-Control": "no-store",
        },
    )


def _save(
    kit: PageKit,
    principal: Principal,
    slug: str,
    url: str,
    key_source: str,
    key_type: str,
    private_key: str,
    passphrase: str,
) -> SavedConnection:
    """What the API's ``PUT …/repository`` does, for the form: save, audit, queue a fetch."""
    app = kit.app
    key = None
    if key_source == "paste":
        if not private_key.strip():
            raise _key_required()
        if len(private_key) > MAX_KEY_CHARS:
            raise _key_too_long()
        key = app.connections.import_key(private_key, passphrase or None)
    elif key_type not in KEY_TYPES:
        raise _type_invalid()
    saved = app.connections.save(
        slug,
        url[:MAX_FIELD_CHARS],
        key=key,
        key_type=key_type,
        replace=True,
        targets=target_policy(kit),
    )
    key_audit.connection_saved(app.audit, principal, slug, saved)
    app.fetch_requests.request(slug, trigger="connect", actor=principal)
    return saved


def _no_prepared_key() -> RepolinkError:
    return NotFound(
        "prepared_key_not_found",
        "this project has no generated key waiting to be saved",
        "press Generate SSH key first",
    )


def _key_required() -> RepolinkError:
    return ValidationError(
        "key_choice_required",
        "no private key was pasted",
        "paste the private key file, or choose Generate SSH key",
    )


def _key_too_long() -> RepolinkError:
    return ValidationError(
        "invalid_private_key",
        f"the pasted text is longer than {MAX_KEY_CHARS} characters; no key file is",
        "paste the private key file alone",
        reason="key_too_long",
    )


def _type_invalid() -> RepolinkError:
    return ValidationError(
        "key_type_invalid",
        "the key type must be ed25519, rsa or ecdsa",
        "choose ed25519 (recommended), rsa or ecdsa",
    )
