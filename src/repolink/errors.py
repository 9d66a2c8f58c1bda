"""Every error repolink raises on purpose.

One root, :class:`RepolinkError`. Each instance carries a stable machine-readable ``code``
(``key_is_public``, ``url_https``, ``access_key_duplicate`` …), a one-line ``message`` saying
what is wrong and a ``hint`` saying how to fix it. The adapters map the branches below to
their own vocabulary in exactly one place each: the CLI exits with status 2 for
:class:`InvalidInput` and 1 for the rest; the HTTP API answers with the ``http_status`` of the
class and a JSON body ``{"error": {"code", "message", "hint"}}``.

Error texts never contain the input that caused them when that input may be key material:
messages are written from facts about the input (its kind, its length, the line number),
never from a copy of it.

Tree::

    RepolinkError
    ├── InvalidInput                 (exit 2, HTTP 400) the caller gave us something unusable
    │   ├── KeyFormatError           a private or public key that cannot be used
    │   ├── URLError                 an SSH remote URL we refuse
    │   └── ValidationError          any other bad argument (a name, a slug, a fingerprint …)
    ├── NotFound                     (HTTP 404) no such thing, or not visible to the caller
    ├── Conflict                     (HTTP 409) the thing exists already / clashes with another
    ├── Unauthorized                 (HTTP 401) no or wrong credentials
    ├── PermissionDenied             (HTTP 403) known caller, not allowed to do this
    ├── VaultError                   (HTTP 500) the master key is missing, wrong or unusable
    ├── StoreError                   (HTTP 500) the database cannot be opened or migrated
    └── GitError                     (HTTP 502) a git or ssh process failed; ``code`` names why
"""

from __future__ import annotations

from typing import ClassVar


class RepolinkError(Exception):
    """Root of every error repolink raises on purpose."""

    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def one_line(self) -> str:
        """``code: message — hint`` on one line, as the CLI prints it."""
        text = f"{self.code}: {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return " ".join(text.split())

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class InvalidInput(RepolinkError):
    http_status = 400
    exit_code = 2


class KeyFormatError(InvalidInput):
    """A private or public key that cannot be parsed or is not acceptable."""


class URLError(InvalidInput):
    """An SSH remote URL that repolink refuses to hand to git."""


class ValidationError(InvalidInput):
    """Any other bad argument."""


class NotFound(RepolinkError):
    http_status = 404
    exit_code = 2


class Conflict(RepolinkError):
    http_status = 409
    exit_code = 2


class Unauthorized(RepolinkError):
    http_status = 401


class PermissionDenied(RepolinkError):
    http_status = 403


class VaultError(RepolinkError):
    http_status = 500


class StoreError(RepolinkError):
    http_status = 500


class GitError(RepolinkError):
    http_status = 502
