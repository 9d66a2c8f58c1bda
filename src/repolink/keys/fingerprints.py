"""Key fingerprints exactly as ``ssh-keygen -l -E sha256|md5`` prints them, and reading one
back as people paste it."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

_SHA256_BODY = re.compile(r"[A-Za-z0-9+/]{43}")
_MD5_BODY = re.compile(r"(?:[0-9a-f]{2}:){15}[0-9a-f]{2}")


@dataclass(frozen=True)
class Fingerprint:
    """A fingerprint as a person named a key: ``value`` is written exactly as
    :func:`fingerprint_sha256` / :func:`fingerprint_md5` write it, so it compares with stored
    ones as a string."""

    kind: Literal["sha256", "md5"]
    value: str


def read_fingerprint(text: str) -> Fingerprint | None:
    """The SHA256 (``SHA256:…``) or MD5 (``MD5:aa:bb:…``, or just ``aa:bb:…`` as GitHub and
    CircleCI show it, any case) fingerprint in ``text``, or ``None`` when it is neither."""
    candidate = text.strip()
    if candidate[:7].upper() == "SHA256:" and _SHA256_BODY.fullmatch(candidate[7:]):
        return Fingerprint("sha256", "SHA256:" + candidate[7:])
    lowered = candidate.lower().removeprefix("md5:")
    if _MD5_BODY.fullmatch(lowered):
        return Fingerprint("md5", "MD5:" + lowered)
    return None


def fingerprint_sha256(blob: bytes) -> str:
    """``SHA256:`` and the unpadded base64 of the SHA-256 of the wire-format public key blob."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def fingerprint_md5(blob: bytes) -> str:
    """``MD5:`` and the colon-separated lower-case hex of the MD5 of the public key blob."""
    # MD5 is what the legacy fingerprint is defined as; it identifies, it does not protect.
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return "MD5:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
