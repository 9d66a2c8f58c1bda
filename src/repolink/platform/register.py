"""Adding a deploy key to its repository, and removing it, through a Bitbucket-shaped host API.

``POST {api_root}/repositories/{workspace}/{slug}/deploy-keys`` with ``{"key", "label"}`` and
a bearer token adds it; ``GET`` on the same path (paged) finds it by its key and ``DELETE
…/deploy-keys/{id}`` removes it. The built-in host serves this API under ``/host/api/2.0`` (the
root used when the given URL has no path, e.g. ``http://host:8081``), Bitbucket Cloud under
``https://api.bitbucket.org/2.0``. The workspace and slug come from the connection's URL
(``git@host:WORKSPACE/SLUG.git``). The token is never part of a message.

Where the API and its token come from (:func:`host_api_from`): an explicit URL, else the
``host_api_url`` setting; the token only from the ``host_api_token`` setting, so it never
travels on a command line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from repolink.errors import HostAPIError, ValidationError
from repolink.platform.connections import parse_connection_url
from repolink.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
BUILT_IN_HOST_API = "/host/api/2.0"
# Pages followed while looking for a key to remove; a repository with more access keys than
# this many pages hold is not one a deploy key is looked for in.
MAX_PAGES = 50


@dataclass(frozen=True)
class HostAPI:
    """A Git host's Bitbucket-shaped API: its root and a bearer token that may administer the
    repository. The token is never part of a message or a repr. Build it with :meth:`at`,
    which checks and normalizes the root."""

    root: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def at(cls, url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT) -> HostAPI:
        """The API at ``url`` (a repolink host's address is enough), or ``host_api_invalid``."""
        return cls(_api_root(url), token, timeout)

    @property
    def host(self) -> str:
        """The API's ``host[:port]``, for messages."""
        return httpx.URL(self.root).netloc.decode("ascii")

    def register_access_key(self, repository_url: str, public_key: str, *, label: str) -> bool:
        """Add ``public_key`` as a read-only access key of the repository ``repository_url``
        names: True when added, False when the repository had it already (not an error:
        registering is idempotent)."""
        workspace, slug = _workspace_and_slug(repository_url)
        response = self._request(
            "POST", _keys_path(workspace, slug), json={"key": public_key, "label": label}
        )
        status = response.status_code
        if status in (200, 201):
            log.info("registered the deploy key as an access key of %s/%s", workspace, slug)
            return True
        if _is_duplicate(response):
            log.info("the deploy key was an access key of %s/%s already", workspace, slug)
            return False
        raise self._refusal(response, workspace, slug, "adding the access key")

    def remove_access_key(self, repository_url: str, public_key: str) -> bool:
        """Remove the access key ``public_key`` from the repository ``repository_url`` names:
        True when removed, False when the repository did not have it."""
        workspace, slug = _workspace_and_slug(repository_url)
        key_id = self._find_key(workspace, slug, _key_body(public_key))
        if key_id is None:
            log.info("the key was no access key of %s/%s; nothing to remove", workspace, slug)
            return False
        response = self._request("DELETE", f"{_keys_path(workspace, slug)}/{key_id}")
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise self._refusal(response, workspace, slug, "removing the access key")
        log.info("removed access key %s of %s/%s", key_id, workspace, slug)
        return True

    def _find_key(self, workspace: str, slug: str, body: str) -> Any:
        url: str | None = f"{self.root}{_keys_path(workspace, slug)}"
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self._request("GET", url=url)
            if response.status_code != 200:
                raise self._refusal(response, workspace, slug, "listing the access keys")
            page = response.json()
            for key in page.get("values", []):
                if _key_body(str(key.get("key", ""))) == body:
                    return key.get("id")
            url = _same_origin(page.get("next"), self.root)
        return None

    def _request(
        self, method: str, path: str = "", *, url: str | None = None, json: Any = None
    ) -> httpx.Response:
        try:
            return httpx.request(
                method,
                url or f"{self.root}{path}",
                json=json,
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise HostAPIError(
                "host_api_unreachable",
                f"cannot reach the host API at {self.root} ({type(exc).__name__})",
                "check the host API's URL (e.g. https://api.bitbucket.org/2.0) and that the "
                "host is up, then register the key again",
                context={"api": self.root},
            ) from None

    def _refusal(
        self, response: httpx.Response, workspace: str, slug: str, doing: str
    ) -> HostAPIError:
        status = response.status_code
        # What the remote API refused is a failure of the operation, not of this caller's input
        # (exit 1, HTTP 502), even when it reads as "unauthorized" or "not found" there.
        if status in (401, 403):
            return HostAPIError(
                "host_api_unauthorized",
                f"the host API at {self.host} refused the token (HTTP {status})",
                "give a token that may administer the repository, then register the key again",
                context={"api": self.root},
            )
        if status == 404:
            return HostAPIError(
                "host_repository_not_found",
                f"the host API at {self.host} has no repository {workspace}/{slug}",
                "check the repository path in the URL and the host API's URL",
                context={"api": self.root, "repository": f"{workspace}/{slug}"},
            )
        return HostAPIError(
            "host_api_failed",
            f"the host API at {self.host} answered HTTP {status} when {doing}",
            "change the repository's access keys by hand",
            context={"api": self.root},
        )


def host_api_from(settings: Settings, url: str | None) -> HostAPI:
    """The host API at ``url`` (default: the ``host_api_url`` setting) with the token of the
    ``host_api_token`` setting; ``host_api_missing`` names what is missing and both ways to give
    the URL."""
    url = url or settings.host_api_url
    token = settings.host_api_token.get_secret_value() if settings.host_api_token else ""
    missing = [
        what
        for what, absent in (
            ("the host API's URL (given with the command, or REPOLINK_HOST_API_URL)", not url),
            ("a token for it (REPOLINK_HOST_API_TOKEN)", not token),
        )
        if absent
    ]
    if missing:
        raise ValidationError(
            "host_api_missing",
            "registering the key on the host needs " + " and ".join(missing),
            "set REPOLINK_HOST_API_URL (or give the URL) and REPOLINK_HOST_API_TOKEN to a "
            "token that may administer the repository",
            context={"missing": "url" if not url else "token"},
        )
    assert url is not None
    return HostAPI.at(url, token)


def repository_path(repository_url: str) -> str:
    """``WORKSPACE/SLUG`` of the repository ``repository_url`` names on a Bitbucket-shaped
    host."""
    return "/".join(_workspace_and_slug(repository_url))


def _keys_path(workspace: str, slug: str) -> str:
    return f"/repositories/{quote(workspace, safe='')}/{quote(slug, safe='')}/deploy-keys"


def _key_body(public_key: str) -> str:
    """``type base64`` of a public key line: what identifies it, without its comment."""
    return " ".join(public_key.split()[:2])


def _is_duplicate(response: httpx.Response) -> bool:
    # Bitbucket: 400 "Someone has already added that access key to this repository"; the
    # built-in host: 400 access_key_duplicate. A 409 alone is no proof: the built-in host also
    # answers it for a key that is an account key, which is not this key being registered.
    text = response.text.lower()
    if response.status_code == 409:
        return "already" in text
    return response.status_code == 400 and (
        "access_key_duplicate" in text or "already added" in text
    )


def _same_origin(next_url: object, root: str) -> str | None:
    """A page's ``next`` link, only when it stays on the API's own origin: the token goes with
    every request and must never be sent elsewhere."""
    if not isinstance(next_url, str) or not next_url:
        return None
    given, own = httpx.URL(next_url), httpx.URL(root)
    if (given.scheme, given.netloc) != (own.scheme, own.netloc):
        log.warning("ignored a next page on another origin than the host API's")
        return None
    return next_url


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
            "the host API's URL must be an http(s) URL",
            "give e.g. https://api.bitbucket.org/2.0, or http://HOST:PORT of the built-in host",
        )
    if parsed.userinfo:
        raise ValidationError(
            "host_api_invalid",
            "the host API's URL must not hold a user name or password",
            "give the URL without them and the token in REPOLINK_HOST_API_TOKEN",
        )
    if parsed.path in ("", "/"):
        parsed = parsed.copy_with(path=BUILT_IN_HOST_API)
    return str(parsed).rstrip("/")
