"""SHA256 host key fingerprints as people paste them, made exact.

Accepted: ``SHA256:`` followed by the 43 characters of unpadded base64 that ``ssh``,
``ssh-keygen -l`` and the services' documentation print; the prefix may be missing or
written in another case, and the trailing ``.`` that ssh puts after a fingerprint in its
"REMOTE HOST IDENTIFICATION HAS CHANGED" warning is dropped (``.`` is not base64).
"""

from __future__ import annotations

import logging
import re

from repolink.errors import ValidationError

log = logging.getLogger(__name__)

FINGERPRINT_PREFIX = "SHA256:"
_BODY = re.compile(r"[A-Za-z0-9+/]{43}")
_MD5 = re.compile(r"(?:MD5:)?(?:[0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2}")


def parse_sha256_fingerprint(text: str) -> str:
    """``SHA256:…`` exactly as ssh prints it, or ``fingerprint_invalid``.

    The input is never echoed unless it is a well-formed fingerprint: it may be anything.
    """
    candidate = text.strip().removesuffix(".")
    if candidate[: len(FINGERPRINT_PREFIX)].upper() == FINGERPRINT_PREFIX.upper():
        candidate = candidate[len(FINGERPRINT_PREFIX) :]
    if _BODY.fullmatch(candidate):
        return FINGERPRINT_PREFIX + candidate
    if _MD5.fullmatch(text.strip()):
        raise ValidationError(
            "fingerprint_invalid",
            "this is an MD5 fingerprint; host keys are trusted by their SHA256 fingerprint",
            "give the SHA256 fingerprint (ssh-keygen -l -E sha256 prints it), like "
            "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
        )
    raise ValidationError(
        "fingerprint_invalid",
        f"the fingerprint is not SHA256: and 43 base64 characters "
        f"(got {len(text.strip())} characters)",
        "copy the fingerprint as ssh or a scan of the host prints it, like "
        "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
    )
