"""An SSH public key as a value, importable without the cryptography library: a key read
back from repolink's own store (a trusted host key, say) is built from its fields; checking a
blob that comes from outside (:meth:`PublicKey.from_blob`) loads the cryptography then."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from repolink.errors import ValidationError
from repolink.keys.fingerprints import fingerprint_md5, fingerprint_sha256


def check_comment(comment: str) -> str:
    """``comment`` if it fits on a key line, else a ``ValidationError``."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in comment):
        raise ValidationError(
            "key_comment_invalid",
            "the key comment contains a line break or another control character",
            "use a comment on one line, e.g. 'deploy@ci'",
        )
    return comment


@dataclass(frozen=True, repr=False)
class PublicKey:
    """An SSH public key: its wire-format blob plus the comment that travels beside it.

    Two public keys are equal when they are the same key; comment and bits do not count.
    Build one with :meth:`from_blob` (which checks the blob) unless the fields come from a
    trusted source such as repolink's own store.
    """

    key_type: str
    blob: bytes
    comment: str = field(default="", compare=False)
    bits: int = field(default=0, compare=False)

    @classmethod
    def from_blob(cls, blob: bytes, comment: str = "") -> PublicKey:
        from repolink.keys.blob import inspect_blob

        info = inspect_blob(blob)
        return cls(info.key_type, blob, check_comment(comment), info.bits)

    @property
    def sha256_fingerprint(self) -> str:
        return fingerprint_sha256(self.blob)

    @property
    def md5_fingerprint(self) -> str:
        return fingerprint_md5(self.blob)

    def openssh_line(self, with_comment: bool = True) -> str:
        """The key as one ``.pub`` / ``authorized_keys`` line: ``type base64 [comment]``."""
        line = f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"
        if with_comment and self.comment:
            line += f" {self.comment}"
        return line

    def __repr__(self) -> str:
        return (
            f"PublicKey({self.key_type}, {self.bits} bits, {self.sha256_fingerprint}, "
            f"comment={self.comment!r})"
        )
