"""Adding a deploy key to its repository through a Bitbucket-shaped host API.

``POST {api_root}/repositories/{workspace}/{slug}/deploy-keys`` with ``{"key", "label"}`` and
a bearer token: the built-in host serves it under ``/host/api/2.0`` (the root used when the
given URL has no path, e.g. ``http://host:8081``), Bitbucket Cloud under
``https://api.bitbucket.org/2.0``. The workspace and slug come from the connection's URL
(``git@host:WORKSPACE/SLUG.git``). The token is never part of a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from repolink.errors import HostAPIError, ValidationError
from repolink.platform.connections import parse_connection_url

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
BUILT_IN_HOST_API = "/host/api/2.0"


@dataclass(frozen=True)
class HostAPI:
    """A Git host's Bitbucket-shaped API: its root and a bearer token that may administer the
    repository. The token is never part of a message or a repr."""

    root: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT

    def register_access_key(self, repository_url: str, public_key: str, *, label: str) -> None:
        """Add ``public_key`` as a read-only access key of the repository ``repository_url``
        names. A key the repository already has counts as added."""
        workspace, slug = _workspace_and_slug(repository_url)
        root = _api_root(self.root)
        endpoint = (
            f"{root}/repositories/{quote(workspace, safe='')}/{quote(slug, safe='')}/deploy-keys"
        )
        try:
            response = httpx.post(
                endpoint,
                json={"key": public_key, "label": label},
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise HostAPIError(
                "host_api_unreachable",
                f"cannot reach the host API at {root} ({type(exc).__name__})",
                "check the host API root (e.g. https://api.bitbucket.org/2.0)",
            ) from None
        status = response.status_code
        if status in (200, 201):
            log.info("registered the deploy key as an access key of %s/%s", workspace, slug)
            return
        if status == 409 or (status == 400 and "already" in response.text.lower()):
            log.info("the deploy key was an access key of %s/%s already", workspace, slug)
            return
        # What the remote API refused is a failure of the operation, not of this caller's input
        # (exit 1, HTTP 502), even when it reads as "unauthorized" or "not found" there.
        if status in (401, 403):
            raise HostAPIError(
                "host_api_unauthorized",
                f"the host API refused the token (HTTP {status})",
                "give a token that may administer the repository",
            )
        if status == 404:
            raise HostAPIError(
                "host_repository_not_found",
                f"the host API has no repository {workspace}/{slug}",
                "check the repository path in the URL and the host API root",
            )
        raise HostAPIError(
            "host_api_failed",
            f"the host API answered HTTP {status} when adding the access key",
            "add the public key by hand as a read-only access key, then fetch",
        )


def _workspace_and_slug(repository_url: str) -> tuple[str, str]:
    url = parse_connection_url(repository_url)
    segments = [segment for segment in url.path.split("/") if segment]
    if len(segments) != 2:
        raise ValidationError(
            "host_repository_path_invalid",
            "the URL's path is not WORKSPACE/SLUG(.git), so the host API cannot be used",
            "add the public key by hand as a read-only access key, then fetch",
        )
    return segments[0], segments[1].removesuffix(".git")


def _api_root(api_root: str) -> str:
    try:
        parsed = httpx.URL(api_root.strip())
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationError(
            "host_api_invalid",
            "the host API root must be an http(s) URL",
            "give e.g. https://api.bitbucket.org/2.0 or http://HOST:PORT/host/api/2.0",
        )
    if parsed.path in ("", "/"):
        parsed = parsed.copy_with(path=BUILT_IN_HOST_API)
    return str(parsed).rstrip("/")
