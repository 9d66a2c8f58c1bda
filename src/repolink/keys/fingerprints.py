"""Key fingerprints exactly as ``ssh-keygen -l -E sha256|md5`` prints them."""

from __future__ import annotations

import base64
import hashlib
import logging

log = logging.getLogger(__name__)


def fingerprint_sha256(blob: bytes) -> str:
    """``SHA256:`` and the unpadded base64 of the SHA-256 of the wire-format public key blob."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def fingerprint_md5(blob: bytes) -> str:
    """``MD5:`` and the colon-separated lower-case hex of the MD5 of the public key blob."""
    # MD5 is what the legacy fingerprint is defined as; it identifies, it does not protect.
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return "MD5:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
