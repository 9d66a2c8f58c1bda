"""Absolute links to the host API's objects, as Bitbucket Cloud puts them in ``links``.

Bitbucket clients navigate by these hrefs and by a page's ``next``; they do not build URLs.
So every href is an absolute URL of this server, taken from the request being answered: the
scheme, host and port the client used, and the path the app is served under (its
``root_path``), then :data:`API_PREFIX`. That holds for the host API's own app and for the
one service app that includes its router. An object links only to addresses this API answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request

API_PREFIX = "/host/api/2.0"


@dataclass(frozen=True)
class HostLinks:
    """The hrefs of one request's answer; ``api_root`` is ``http://HOST:PORT/…/host/api/2.0``."""

    api_root: str

    @classmethod
    def of(cls, request: Request) -> HostLinks:
        return cls(str(request.base_url).rstrip("/") + API_PREFIX)

    def workspaces(self) -> str:
        return f"{self.api_root}/workspaces"

    def workspace(self, workspace: str) -> str:
        return f"{self.api_root}/workspaces/{_segment(workspace)}"

    def workspace_repositories(self, workspace: str) -> str:
        return f"{self.api_root}/repositories/{_segment(workspace)}"

    def repository(self, full_name: str) -> str:
        workspace, _, slug = full_name.partition("/")
        return f"{self.api_root}/repositories/{_segment(workspace)}/{_segment(slug)}"

    def hooks(self, full_name: str) -> str:
        return f"{self.repository(full_name)}/hooks"

    def hook(self, full_name: str, hook_uuid: str) -> str:
        return f"{self.hooks(full_name)}/{_segment(hook_uuid)}"

    def deploy_keys(self, full_name: str) -> str:
        return f"{self.repository(full_name)}/deploy-keys"

    def deploy_key(self, full_name: str, key_id: int) -> str:
        return f"{self.deploy_keys(full_name)}/{key_id}"


def host_links(request: Request) -> HostLinks:
    """The dependency routes take to link their answers."""
    return HostLinks.of(request)


def _segment(text: str) -> str:
    # Names are validated before they are stored ([a-z0-9_.-]); quoting keeps every href valid
    # even so, and encodes the braces of a Bitbucket uuid (%7B…%7D) as Bitbucket does.
    return quote(text, safe="")
