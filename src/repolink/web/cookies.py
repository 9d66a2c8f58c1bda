"""The pages' cookies: the session, the CSRF token of a page shown before sign-in, a notice.

docs/architecture.md, "Sessions": every cookie is HttpOnly, SameSite=Lax, ``Path=/`` and has
no ``Domain``; when the settings' public URL is https it is also ``Secure`` and its name takes
the ``__Host-`` prefix, which a browser accepts only with exactly those attributes, so no
sibling domain and no plain-HTTP page can plant or overwrite it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from repolink.settings import Settings

SESSION = "repolink_session"
PRESESSION_CSRF = "repolink_csrf"
NOTICE = "repolink_notice"
# A notice is a line of text; a longer one is cut rather than refused.
MAX_NOTICE_LENGTH = 300


@dataclass(frozen=True)
class CookieJar:
    """The cookies' names and attributes for one server's settings."""

    secure: bool

    @classmethod
    def for_settings(cls, settings: Settings) -> CookieJar:
        return cls(secure=settings.public_https)

    def name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure else base

    def read(self, request: Request, base: str) -> str | None:
        return request.cookies.get(self.name(base)) or None

    def write(
        self, response: Response, base: str, value: str, *, max_age: int | None = None
    ) -> None:
        response.set_cookie(
            self.name(base),
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear(self, response: Response, base: str) -> None:
        response.delete_cookie(
            self.name(base), path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    # -- a notice shown by the next page (after a redirect) --------------------------------

    def write_notice(self, response: Response, text: str) -> None:
        encoded = base64.urlsafe_b64encode(text[:MAX_NOTICE_LENGTH].encode("utf-8")).decode()
        self.write(response, NOTICE, encoded)

    def read_notice(self, request: Request) -> str | None:
        encoded = self.read(request, NOTICE)
        if encoded is None:
            return None
        try:
            text = base64.urlsafe_b64decode(encoded.encode("ascii")).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeError):
            return None
        return text[:MAX_NOTICE_LENGTH] if text.isprintable() else None
