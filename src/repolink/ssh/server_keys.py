"""The embedded SSH server's own host keys, kept in the data directory across restarts.

Created on first use (ed25519, and RSA 3072 for older clients) as OpenSSH private key files
with mode 0600, then reused, so the known_hosts entries clients saved stay valid.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from repolink.errors import HostKeyError, KeyFormatError
from repolink.keys import generate_key, parse_private_key
from repolink.keys.fingerprints import fingerprint_sha256
from repolink.settings import Settings

log = logging.getLogger(__name__)

# file name → (key type, bits) for the key generator; the order is the order offered.
HOST_KEY_FILES: dict[str, tuple[str, int | None]] = {
    "ssh_host_ed25519_key": ("ed25519", None),
    "ssh_host_rsa_key": ("rsa", 3072),
}


@dataclass(frozen=True)
class HostKey:
    """One host key's public facts (the private half stays in its file)."""

    path: Path
    key_type: str
    public_line: str
    """``type base64`` as it appears in known_hosts."""

    @property
    def fingerprint_sha256(self) -> str:
        blob = base64.b64decode(self.public_line.split()[1])
        return fingerprint_sha256(blob)

    def known_hosts_line(self, host: str, port: int = 22) -> str:
        name = host if port == 22 else f"[{host}]:{port}"
        return f"{name} {self.public_line}"


def host_keys_dir(settings: Settings) -> Path:
    return settings.resolved_data_dir / "host"


def ensure_host_keys(settings: Settings) -> list[HostKey]:
    """The host keys, created first when missing."""
    directory = host_keys_dir(settings)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = []
    for file_name, (key_type, bits) in HOST_KEY_FILES.items():
        path = directory / file_name
        if not path.exists():
            _create(path, key_type, bits)
        keys.append(_describe(path))
    return keys


def _create(path: Path, key_type: str, bits: int | None) -> None:
    private = generate_key(key_type, bits=bits, comment=f"repolink host key {path.name}")
    # Written aside, then linked into place: a concurrent first start keeps the key that
    # won, and nobody ever reads a half-written file.
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(private.to_openssh())
        try:
            os.link(partial, path)
        except FileExistsError:
            return
    finally:
        partial.unlink(missing_ok=True)
    log.info("created SSH host key %s (%s)", path, private.public_key.sha256_fingerprint)


def _describe(path: Path) -> HostKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc.strerror or "cannot read it") from None
    try:
        public = parse_private_key(data).key.public_key
    except KeyFormatError:
        raise _unreadable(path, "not a private key file") from None
    return HostKey(path=path, key_type=public.key_type, public_line=public.openssh_line(False))


def _unreadable(path: Path, reason: str) -> HostKeyError:
    return HostKeyError(
        "host_key_unreadable",
        f"cannot read the SSH host key {path} ({reason})",
        f"restore it, or remove {path} to create a new host key (clients will then see a "
        "changed host key and must update their known_hosts)",
    )
