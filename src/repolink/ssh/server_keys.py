"""The embedded SSH server's own host keys, kept across restarts.

Created on first use (ed25519, and RSA 3072 for older clients) as OpenSSH private key files
with mode 0600, then reused, so the known_hosts entries clients saved stay valid. They live in
``<data_dir>/host``, or — when ``REPOLINK_HOST_STORAGE`` names the shared storage of several
host processes — in its ``.ssh-host-keys`` directory, so that every host behind one address
presents the same keys: the first process to start creates them, whichever it is.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from repolink.errors import HostKeyError, KeyFormatError
from repolink.host.repo_storage import usable_storage
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


SHARED_KEYS_DIR = ".ssh-host-keys"
"""The host keys' directory on a shared storage (no repository is named so: ids are hex)."""


def _own_keys_dir(settings: Settings) -> Path:
    return settings.resolved_data_dir / "host"


def host_keys_dir(settings: Settings) -> Path:
    """Where the host keys are: on the shared storage when one is set, else in the data
    directory. A shared storage that cannot be used is refused (:func:`usable_storage`)."""
    if settings.host_storage is None:
        return _own_keys_dir(settings)
    return usable_storage(settings) / SHARED_KEYS_DIR


def ensure_host_keys(settings: Settings) -> list[HostKey]:
    """The host keys, created first when missing.

    A shared storage without keys yet takes this process's own from its data directory when it
    has them (a deployment whose keys were copied by hand into every data directory keeps
    them); else new ones are made.
    """
    directory = host_keys_dir(settings)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = []
    for file_name, (key_type, bits) in HOST_KEY_FILES.items():
        path = directory / file_name
        if not path.exists():
            own = _own_keys_dir(settings) / file_name
            if directory != own.parent and own.exists():
                _describe(own)  # only a readable key is taken
                placed, how = _place(path, own.read_bytes()), f"taken from {own}"
            else:
                comment = f"repolink host key {file_name}"
                private = generate_key(key_type, bits=bits, comment=comment)
                placed, how = _place(path, private.to_openssh()), "created"
            if placed:
                log.info("SSH host key %s %s (%s)", path, how, _describe(path).fingerprint_sha256)
        keys.append(_describe(path))
    return keys


def _place(path: Path, content: bytes) -> bool:
    """Put ``content`` at ``path`` unless a key is there already; whether it was put. Written
    aside, then linked into place: of processes starting together, the one that links first
    wins and every other reads its key — on a shared file system too — and nobody ever reads a
    half-written file."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        try:
            os.link(partial, path)
        except FileExistsError:
            return False
    finally:
        partial.unlink(missing_ok=True)
    return True


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
