"""Shared-secret signatures of webhook bodies: HMAC-SHA256 over the raw bytes, compared in
constant time.

The host signs the deliveries it sends (``X-Hub-Signature``) and the platform checks the ones
it receives (GitHub's ``X-Hub-Signature-256``, Bitbucket's ``X-Hub-Signature``, repolink's own
``X-Repolink-Signature``) with these same functions, so the two sides cannot drift apart.
A signature is always computed over the body exactly as it travelled: parsing and
re-serialising JSON changes bytes, and then no honest signature verifies.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_PREFIX", "same_secret", "sign_body", "signature_matches"]

SIGNATURE_PREFIX = "sha256="
# The hex digest of SHA-256: a header of any other length is wrong before it is compared.
_HEX_DIGEST_LENGTH = 64


def sign_body(secret: bytes, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``body`` under ``secret``."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=<hex>`` of ``body`` under ``secret``.

    The algorithm prefix is compared case-insensitively (senders differ), the digest in
    constant time; a missing, truncated or otherwise malformed header never matches.
    """
    if header is None:
        return False
    given = header.strip()
    prefix, digest = given[: len(SIGNATURE_PREFIX)], given[len(SIGNATURE_PREFIX) :]
    if prefix.lower() != SIGNATURE_PREFIX or len(digest) != _HEX_DIGEST_LENGTH:
        # Still spend the HMAC, so a malformed header is not answered measurably sooner.
        hmac.new(secret, body, hashlib.sha256).digest()
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), digest.lower().encode("ascii", "replace"))


def same_secret(secret: bytes, given: str | None) -> bool:
    """Whether ``given`` (a token sent as is, GitLab's ``X-Gitlab-Token``) equals ``secret``,
    compared in constant time."""
    if given is None:
        return False
    return hmac.compare_digest(secret, given.encode("utf-8", "surrogatepass"))
