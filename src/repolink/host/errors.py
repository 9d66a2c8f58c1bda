"""Errors of the built-in host that need a status of their own."""

from __future__ import annotations

from repolink.errors import Conflict


class DuplicateKey(Conflict):
    """The same public key added twice to one repository or workspace.

    A conflict by nature, but answered with HTTP 400 because that is what Bitbucket Cloud
    answers for a duplicate deploy key, and clients written against it check for 400.
    """

    http_status = 400
