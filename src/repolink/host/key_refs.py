"""How a person names one of the host's keys: its id, its SHA256 or its MD5 fingerprint.

``access-key list`` shows ids, ``ssh-keygen -l`` shows SHA256, GitHub and older tools show
MD5; any of the three finds the key on one repository (or workspace). The lookup is one
function per table, used inside the host service's transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from repolink.errors import ValidationError, quotable
from repolink.keys.fingerprints import Fingerprint, read_fingerprint
from repolink.store.ids import is_row_id
from repolink.store.models.host import AccessKey, AccountKey

log = logging.getLogger(__name__)

KEY_REF_FORMS = (
    "the key's id (as listed), its SHA256 fingerprint (SHA256:…) or its MD5 fingerprint "
    "(MD5:aa:bb:… or aa:bb:…)"
)


@dataclass(frozen=True)
class KeyRef:
    """A key named by id or by fingerprint (exactly one of the two)."""

    key_id: int | None = None
    fingerprint: Fingerprint | None = None

    def __str__(self) -> str:
        """The key as an error names it: its id, or its fingerprint in the stored form."""
        if self.fingerprint is not None:
            return self.fingerprint.value
        return str(self.key_id)


def parse_key_ref(ref: int | str) -> KeyRef:
    """``ref`` as a :class:`KeyRef`, or ``key_ref_invalid``; an int is an id."""
    if isinstance(ref, int):
        return KeyRef(key_id=ref)
    text = ref.strip()
    if text.isascii() and text.isdigit() and len(text) <= 20 and int(text) > 0:
        return KeyRef(key_id=int(text))
    fingerprint = read_fingerprint(text)
    if fingerprint is not None:
        return KeyRef(fingerprint=fingerprint)
    shown = quotable(text)
    raise ValidationError(
        "key_ref_invalid",
        f"{shown!r} names no key" if shown else f"this names no key ({len(text)} characters)",
        f"name the key by {KEY_REF_FORMS}",
    )


def find_access_key(session: Session, repository_id: str, ref: KeyRef) -> AccessKey | None:
    """The access key of this repository that ``ref`` names, or ``None``."""
    query = select(AccessKey).where(
        AccessKey.repository_id == repository_id, _names(AccessKey, ref)
    )
    return session.scalars(query.order_by(AccessKey.id).limit(1)).first()


def find_account_key(session: Session, workspace_id: int, ref: KeyRef) -> AccountKey | None:
    """The account key of this workspace that ``ref`` names, or ``None``."""
    query = select(AccountKey).where(
        AccountKey.workspace_id == workspace_id, _names(AccountKey, ref)
    )
    return session.scalars(query.order_by(AccountKey.id).limit(1)).first()


def _names(table: type[AccessKey] | type[AccountKey], ref: KeyRef) -> ColumnElement[bool]:
    if ref.fingerprint is None:
        if ref.key_id is None or not is_row_id(ref.key_id):
            return false()  # names no row; PostgreSQL would fail the query, not find nothing
        return table.id == ref.key_id
    if ref.fingerprint.kind == "sha256":
        return table.fingerprint_sha256 == ref.fingerprint.value
    return table.fingerprint_md5 == ref.fingerprint.value
