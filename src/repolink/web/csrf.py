"""Forged form posts: the synchronizer token and the origin of every unsafe request.

docs/architecture.md, "Sessions": every POST, PUT, PATCH and DELETE of the pages must name
this server's own origin in ``Origin`` (else ``Referer``; a request with neither is refused)
and carry the session's CSRF token in its form's ``csrf_token`` field (a script: in the
``X-CSRF-Token`` header), compared in constant time. Before sign-in the token is the one a
cookie of the sign-in page holds (a forged sign-in would sign a victim into the attacker's
account). SameSite=Lax is the second line, not the one.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.requests import Request

from repolink.accounts.sessions import csrf_equal
from repolink.errors import PermissionDenied, quotable
from repolink.logsafe import escaped

log = logging.getLogger(__name__)

FIELD = "csrf_token"
HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def expected_origin(request: Request, public_url: str | None) -> str:
    """The origin forms of this server are posted from: the public URL's, else the one the
    request itself was sent to."""
    if public_url:
        return public_url
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def check_origin(request: Request, public_url: str | None) -> None:
    """Refuse (``origin_refused``) an unsafe request not sent from one of our pages."""
    expected = expected_origin(request, public_url)
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
    if origin is not None and origin.lower() == expected:
        return
    shown = quotable(origin or "", limit=100)
    log.warning(
        "refused a %s to %s from origin %s",
        request.method,
        escaped(request.url.path),
        escaped(origin or "(none)"),
    )
    raise PermissionDenied(
        "origin_refused",
        (
            f"this form was sent from another site ({shown}), not from this server's pages"
            if shown
            else "this form did not say which site sent it, and only this server's pages may"
        ),
        "open the page on this server and send the form from there",
        context={"origin": shown or ""},
    )


def check_token(request: Request, presented: str | None, candidates: list[str]) -> None:
    """Refuse (``csrf_token_invalid``) unless ``presented`` is one of ``candidates``."""
    if any(csrf_equal(candidate, presented) for candidate in candidates):
        return
    log.warning(
        "refused a %s to %s without its CSRF token", request.method, escaped(request.url.path)
    )
    raise PermissionDenied(
        "csrf_token_invalid",
        "this form's security token is missing or out of date",
        "go back, reload the page and send the form again",
    )
