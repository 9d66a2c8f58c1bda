"""Every error repolink raises on purpose, in one tree.

One root, :class:`RepolinkError`. Each instance carries a stable machine-readable ``code``
(``key_is_public``, ``url_https``, ``access_key_duplicate`` …), a one-line ``message`` saying
what is wrong, a ``hint`` saying how to fix it, and — where a broad code stands for several
precise ones — the precise ``reason`` (``invalid_url`` with reason ``url_https``). Hints are
adapter-neutral: they name what to change, never a CLI flag or an HTTP field. An adapter may say
it in its own words from the error's ``context`` (the names it is about: ``project``, ``sha`` …):
the CLI's :data:`repolink.hints.COMMAND_HINTS` names the command to run.

The classes say *what kind* of failure it is; what each adapter answers is decided by that
adapter, in one table each: the CLI's exit status (:data:`repolink.cli.errors.EXIT_CODES`, 2 for
bad input, 1 for an operation tried and failed) and the HTTP status
(:data:`repolink.http.errors.HTTP_STATUSES`).

Error texts never contain the input that caused them when that input may be key material:
messages are written from facts about the input (its kind, its length, the line number),
never from a copy of it.

Tree::

    RepolinkError
    ├── InvalidInput                 the caller gave us something unusable
    │   ├── KeyFormatError           a private or public key that cannot be used
    │   │   └── InvalidPrivateKey    ``invalid_private_key``: a deploy key refused (reason: why)
    │   ├── URLError                 an SSH remote URL we refuse
    │   │   ├── InvalidURL           ``invalid_url``: a connection's URL refused (reason: why)
    │   │   └── SubmoduleURLError    ``submodule_url_refused`` (reason: why)
    │   ├── ValidationError          any other bad argument (a name, a slug, a fingerprint …)
    │   └── HostStorageError         the host storage a setting names is missing or unusable
    ├── NotFound                     no such thing, or not visible to the caller
    ├── Conflict                     the thing exists already / clashes with another
    │   └── DuplicateKey             the same public key twice on one repository or workspace
    ├── Unauthorized                 no or wrong credentials
    │   └── RateLimited              too many failed attempts: refused without checking
    ├── PermissionDenied             known caller, not allowed to do this
    ├── VaultError                   the master key is missing, wrong or unusable
    ├── StoreError                   the database cannot be opened or migrated
    ├── HostKeyError                 the built-in host's own server keys cannot be used
    ├── HostAPIError                 a Git host's API cannot be reached or refused a request
    └── GitError                     a git or ssh process failed; ``code`` names why
        └── FetchError               a fetch failed; ``code`` is the diagnosis
            └── SubmoduleFetchError  fetching a submodule failed
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

_Recast = TypeVar("_Recast", bound="RepolinkError")


# What an error message may quote of the caller's text (`quotable`).
MAX_QUOTED_LENGTH = 80
_KEY_LIKE = re.compile(r"-----|[A-Za-z0-9+/=]{40,}")


def quotable(text: str, *, limit: int = MAX_QUOTED_LENGTH) -> str | None:
    """``text`` as a message may quote it, or ``None`` when it may not.

    A caller who pasted a key where a name belongs must not find it echoed in an error, a
    log line or a terminal: only short, printable, one-line text that holds no PEM armour and
    no long base64 run is quoted; control characters could also rewrite a terminal.
    """
    text = text.strip()
    if not text or len(text) > limit or not text.isprintable() or _KEY_LIKE.search(text):
        return None
    return text


class RepolinkError(Exception):
    """Root of every error repolink raises on purpose."""

    code: str
    message: str
    hint: str
    reason: str | None
    context: Mapping[str, str]

    def __init__(
        self,
        code: str,
        message: str,
        hint: str = "",
        *,
        reason: str | None = None,
        context: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.reason = reason
        self.context = dict(context or {})

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def one_line(self, hint: str | None = None) -> str:
        """``code: message — hint`` on one line; ``hint`` replaces the error's own."""
        text = f"{self.code}: {self.message}"
        shown = self.hint if hint is None else hint
        if shown:
            text += f" — {shown}"
        return " ".join(text.split())

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}

    def recast(
        self, kind: type[_Recast], *, code: str | None = None, message: str | None = None
    ) -> _Recast:
        """This error as another class of the tree (a host-key refusal as a fetch error …),
        keeping its hint, reason and context; ``code`` and ``message`` replace its own.
        ``kind`` takes the root's arguments (not :class:`InvalidURL`, whose code is fixed)."""
        return kind(
            code or self.code,
            message or self.message,
            self.hint,
            reason=self.reason,
            context=self.context,
        )


class InvalidInput(RepolinkError):
    """The caller gave us something unusable."""


class KeyFormatError(InvalidInput):
    """A private or public key that cannot be parsed or is not acceptable."""


class InvalidPrivateKey(KeyFormatError):
    """``invalid_private_key``: the deploy key cannot be used; ``reason`` is the precise key
    code (``key_truncated``, ``key_is_public``, ``key_wrong_passphrase`` …)."""

    def __init__(self, reason: str, message: str, hint: str) -> None:
        super().__init__("invalid_private_key", message, hint, reason=reason)


class URLError(InvalidInput):
    """An SSH remote URL that repolink refuses to hand to git."""


class InvalidURL(URLError):
    """``invalid_url``: the connection's URL is refused; ``reason`` is the precise URL code."""

    def __init__(self, reason: str, message: str, hint: str) -> None:
        super().__init__("invalid_url", message, hint, reason=reason)


class SubmoduleURLError(URLError):
    """``submodule_url_refused``: a submodule URL repolink will not hand to git; ``reason``
    is the precise :mod:`repolink.urls` code (``url_file``, ``url_transport`` …)."""

    def __init__(self, reason: str, message: str, hint: str) -> None:
        super().__init__("submodule_url_refused", message, hint, reason=reason)


class ValidationError(InvalidInput):
    """Any other bad argument."""


class HostStorageError(InvalidInput):
    """The built-in host's storage (``REPOLINK_HOST_STORAGE``) is missing, not a directory or
    not writable: the process's own input, fixed by an operator — never by the caller of a
    request, who is answered that the server cannot serve it (503)."""


class NotFound(RepolinkError):
    """No such thing, or not visible to the caller."""


class Conflict(RepolinkError):
    """The thing exists already, or clashes with another."""


class DuplicateKey(Conflict):
    """The same public key added twice to one repository or workspace."""


class Unauthorized(RepolinkError):
    """No credentials, or wrong ones."""


class RateLimited(Unauthorized):
    """Too many failed attempts (sign-ins) from one account or address: refused unchecked
    until the window has passed."""


class PermissionDenied(RepolinkError):
    """A known caller that may not do this."""


class VaultError(RepolinkError):
    """The master key is missing, wrong or unusable."""


class StoreError(RepolinkError):
    """The database cannot be opened or migrated."""


class HostKeyError(RepolinkError):
    """The built-in host's own server keys cannot be read or made."""


class HostAPIError(RepolinkError):
    """A Git host's API could not be reached, or refused the request for another reason."""


class GitError(RepolinkError):
    """A git or ssh process failed; ``code`` names why."""


class FetchError(GitError):
    """A fetch failed; ``code`` is one of :data:`repolink.git.diagnosis.FETCH_ERROR_CODES`."""


class SubmoduleFetchError(FetchError):
    """Fetching a submodule failed; ``code`` is the diagnosis (``auth_failed`` …)."""
