"""The cursors of the commit picker's pages: opaque to clients, and checked when they come back.

``t.<commit time>.<seq>`` continues the listing of all refs after that key of the index;
``s.<sha>`` continues one ref's walk after that commit. Both travel base64url-encoded without
padding; anything else is ``cursor_invalid``.
"""

from __future__ import annotations

import base64
import binascii
import re

from repolink.errors import ValidationError
from repolink.store.ids import MAX_ROW_ID

# A commit time is a BigInteger column.
_MAX_TIME = 2**63 - 1
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def encode_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor.strip() + "=" * (-len(cursor.strip()) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise _bad_cursor() from None


def decode_time_cursor(cursor: str) -> tuple[int, int]:
    kind, _, rest = _decode_cursor(cursor).partition(".")
    seconds, _, seq = rest.partition(".")
    if kind != "t" or not seconds.lstrip("-").isdigit() or not seq.isdigit():
        raise _bad_cursor()
    # Numbers no commit has would overflow the query (PostgreSQL's integer for seq).
    if len(seconds) > 20 or len(seq) > 10 or abs(int(seconds)) > _MAX_TIME:
        raise _bad_cursor()
    if int(seq) > MAX_ROW_ID:
        raise _bad_cursor()
    return int(seconds), int(seq)


def decode_sha_cursor(cursor: str) -> str:
    kind, _, sha = _decode_cursor(cursor).partition(".")
    if kind != "s" or not _FULL_SHA.fullmatch(sha):
        raise _bad_cursor()
    return sha


def _bad_cursor() -> ValidationError:
    return ValidationError(
        "cursor_invalid",
        "the cursor is not one this listing handed out",
        "pass the next_cursor of the previous page unchanged, with the same ref",
    )
