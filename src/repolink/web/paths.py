"""Where the pages live: every page's address is made here, never typed into a template."""

from __future__ import annotations

from urllib.parse import quote, urlencode

PREFIX = "/ui"
HOME = f"{PREFIX}/projects"
SIGNIN = f"{PREFIX}/signin"
SIGNOUT = f"{PREFIX}/signout"
ACCOUNT = f"{PREFIX}/account"
STATIC = f"{PREFIX}/static"
HOST_REPOSITORIES = f"{PREFIX}/host/repositories"


def project(slug: str, *parts: str) -> str:
    """``/ui/projects/SLUG[/PART…]``; each part is quoted as one path segment."""
    return "/".join(
        [f"{PREFIX}/projects/{quote(slug, safe='')}", *(quote(p, safe="") for p in parts)]
    )


def host_repository(workspace: str, slug: str, *parts: str) -> str:
    """``/ui/host/repositories/WORKSPACE/SLUG[/PART…]``: a repository of the built-in host."""
    return "/".join([HOST_REPOSITORIES, *(quote(p, safe="") for p in (workspace, slug, *parts))])


def host_workspace(workspace: str, *parts: str) -> str:
    """``/ui/host/workspaces/WORKSPACE[/PART…]``: a workspace of the built-in host."""
    return "/".join(
        [f"{PREFIX}/host/workspaces", *(quote(p, safe="") for p in (workspace, *parts))]
    )


def static(name: str) -> str:
    return f"{STATIC}/{name}"


def signin(next_path: str | None = None) -> str:
    """The sign-in page, returning to ``next_path`` (a page of ours) afterwards."""
    target = safe_next(next_path)
    return SIGNIN if target == HOME else f"{SIGNIN}?{urlencode({'next': target})}"


def safe_next(next_path: str | None) -> str:
    """``next_path`` when it is a page of this server, else the home page: a sign-in must
    not send anyone to another site (an open redirect)."""
    if (
        not next_path
        or not next_path.startswith(f"{PREFIX}/")
        or next_path.startswith(SIGNIN)
        or "//" in next_path
        or "\\" in next_path
        or not next_path.isprintable()
        or len(next_path) > 512
    ):
        return HOME
    return next_path
