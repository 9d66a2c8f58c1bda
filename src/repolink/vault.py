"""Private keys at rest: AES-256-GCM under versioned master keys.

A token is self-describing, so a row never depends on which master key is current::

    format (1 byte) | key version (4 bytes, big-endian) | nonce (12 bytes) | ciphertext + tag

The associated data is a domain label plus the id of the row that holds the token: a token
copied into another row, or into another kind of record, fails to decrypt. The highest loaded
version encrypts; older versions stay loaded so existing tokens keep decrypting until they are
re-encrypted.

Master keys come from ``REPOLINK_SECRET_KEY`` (``BASE64`` = version 1, or ``1:BASE64,2:BASE64``)
or else from a key file (one ``version:BASE64`` per line, ``#`` comments allowed), created with
mode 0600 on first use. Key bytes never appear in a repr, a message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import logging
import os
import secrets
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from repolink.errors import VaultError
from repolink.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
TOKEN_FORMAT = 0x01
MAX_VERSION = 2**32 - 1

_HEADER = struct.Struct(">BI")
_AAD_LABEL = b"repolink.vault.v1\x00"
_GENERATE_HINT = "generate one with: openssl rand -base64 32"


class Vault:
    """Encrypts and decrypts private keys for one record at a time.

    Built from ``{version: 32-byte key}``; holds only cipher objects afterwards, never the
    key bytes, so nothing about a key can leak through ``repr`` or a debugger's locals view.
    """

    __slots__ = ("_ciphers", "_current")

    def __init__(self, master_keys: Mapping[int, bytes]) -> None:
        if not master_keys:
            raise VaultError(
                "vault_key_invalid",
                "no master key was given",
                f"set REPOLINK_SECRET_KEY or provide the key file; {_GENERATE_HINT}",
            )
        # Imported with the first vault: a command that decrypts nothing (`project list`)
        # does not load cryptography (issue 10 §2).
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        ciphers: dict[int, AESGCM] = {}
        for version, key in master_keys.items():
            _check_version(version)
            if len(key) != KEY_BYTES:
                raise VaultError(
                    "vault_key_invalid",
                    f"master key version {version} is {len(key)} bytes long, not {KEY_BYTES}",
                    _GENERATE_HINT,
                )
            ciphers[version] = AESGCM(key)
        self._ciphers = ciphers
        self._current = max(ciphers)

    def __repr__(self) -> str:
        return f"Vault(versions={self.versions}, current={self._current})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # A pickled vault would be a copy of the master keys written wherever pickles go.
        raise TypeError("a Vault cannot be pickled")

    @property
    def current_version(self) -> int:
        """The version new tokens are encrypted with (the highest one loaded)."""
        return self._current

    @property
    def versions(self) -> list[int]:
        return sorted(self._ciphers)

    def encrypt(self, plaintext: bytes, *, record_id: str) -> bytes:
        """A token that only :meth:`decrypt` with the same ``record_id`` can open."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext, _aad(record_id))
        return _HEADER.pack(TOKEN_FORMAT, self._current) + nonce + sealed

    def decrypt(self, token: bytes, *, record_id: str) -> bytes:
        """The plaintext of ``token``, or :class:`VaultError` if it was not made for this row."""
        version = token_version(token)
        cipher = self._ciphers.get(version)
        if cipher is None:
            loaded = ", ".join(str(v) for v in self.versions)
            raise VaultError(
                "vault_key_missing",
                f"the key was encrypted with master key version {version}, which is not loaded "
                f"(loaded: {loaded})",
                f"provide the master key file or REPOLINK_SECRET_KEY that holds version {version}",
            )
        from cryptography.exceptions import InvalidTag  # loaded already, with AESGCM

        nonce = token[_HEADER.size : _HEADER.size + NONCE_BYTES]
        try:
            return cipher.decrypt(nonce, token[_HEADER.size + NONCE_BYTES :], _aad(record_id))
        except InvalidTag:
            raise VaultError(
                "vault_decrypt_failed",
                "a stored private key does not decrypt for its record",
                "the ciphertext was altered or copied from another record, or master key "
                f"version {version} is not the key that encrypted it; store the key again",
            ) from None

    def needs_reencrypt(self, token: bytes) -> bool:
        """Whether ``token`` was encrypted with another version than the current one."""
        return token_version(token) != self._current


def token_version(token: bytes) -> int:
    """The master key version a token was encrypted with."""
    if len(token) < _HEADER.size + NONCE_BYTES + TAG_BYTES:
        raise VaultError(
            "vault_decrypt_failed",
            f"a stored private key is truncated ({len(token)} bytes)",
            "the stored ciphertext was altered; store the key again",
        )
    token_format, version = _HEADER.unpack_from(token)
    if token_format != TOKEN_FORMAT:
        raise VaultError(
            "vault_decrypt_failed",
            f"a stored private key has an unknown format ({token_format})",
            "the stored ciphertext was altered, or written by a newer repolink; upgrade repolink",
        )
    return int(version)


def _aad(record_id: str) -> bytes:
    if not record_id:
        raise VaultError(
            "vault_record_id_missing",
            "a private key can only be encrypted for a record id",
            "pass the id of the row that will hold the ciphertext",
        )
    return _AAD_LABEL + record_id.encode("utf-8")


def _check_version(version: int) -> None:
    if not 1 <= version <= MAX_VERSION:
        raise VaultError(
            "vault_key_invalid",
            f"master key version {version} is out of range (1 … {MAX_VERSION})",
            "number master key versions 1, 2, 3 …",
        )


# --- loading master keys ------------------------------------------------------------------------


def load_vault(settings: Settings) -> Vault:
    """The vault for ``settings``: keys from REPOLINK_SECRET_KEY, else from the key file."""
    if settings.secret_key is not None:
        entries = settings.secret_key.get_secret_value().replace("\n", ",").split(",")
        return Vault(_parse_keys(entries, _ENV_SOURCE))
    path = settings.resolved_secret_key_file
    if not path.exists():
        _create_key_file(path)
    return Vault(_parse_keys(_read_key_text(path).splitlines(), str(path)))


class VaultLoader:
    """The vault of one application, loaded on first use and then kept.

    Loading reads (or creates) the master key file, so a command that never touches a private
    key never does it. :meth:`reload` reads the keys again: after this or another process
    added a master key version.
    """

    def __init__(self, settings: Settings, vault: Vault | None = None) -> None:
        self._settings = settings
        self._vault = vault
        self._lock = threading.Lock()

    def __call__(self) -> Vault:
        vault = self._vault
        if vault is None:
            with self._lock:
                if self._vault is None:
                    self._vault = load_vault(self._settings)
                vault = self._vault
        return vault

    def reload(self) -> Vault:
        with self._lock:
            self._vault = load_vault(self._settings)
            return self._vault


def rotate_master_key(settings: Settings) -> int:
    """Add a new master key version to the key file and return it.

    Old versions stay in the file, so existing tokens keep decrypting until they are
    re-encrypted. Concurrent rotations are serialised with a lock next to the key file; the
    file is replaced atomically, so a crash leaves either the old or the new file.
    """
    if settings.secret_key is not None:
        raise VaultError(
            "vault_key_from_environment",
            "the master keys come from REPOLINK_SECRET_KEY, which repolink cannot change",
            "add a new version to REPOLINK_SECRET_KEY yourself ('1:OLD,2:NEW', NEW from "
            "`openssl rand -base64 32`), restart, then re-encrypt the stored keys",
        )
    path = settings.resolved_secret_key_file
    if not path.exists():
        _create_key_file(path)
    with _locked(path.with_name(path.name + ".lock")):
        text = _read_key_text(path)
        version = max(_parse_keys(text.splitlines(), str(path))) + 1
        _check_version(version)
        if text and not text.endswith("\n"):
            text += "\n"
        text += _key_line(version, secrets.token_bytes(KEY_BYTES))
        _replace_file(path, text)
    log.info("added master key version %d to %s", version, path)
    return version


_ENV_SOURCE = "REPOLINK_SECRET_KEY"


def _parse_keys(entries: Iterable[str], source: str) -> dict[int, bytes]:
    """``{version: key}`` from ``version:base64`` entries; a lone bare entry is version 1."""
    items = [entry.strip() for entry in entries]
    items = [item for item in items if item and not item.startswith("#")]
    if len(items) == 1 and ":" not in items[0]:
        items = [f"1:{items[0]}"]
    keys: dict[int, bytes] = {}
    for position, item in enumerate(items, start=1):
        version_text, sep, encoded = item.partition(":")
        if not sep or not version_text.strip().isdigit():
            raise VaultError(
                "vault_key_invalid",
                f"entry {position} of {source} is not 'version:base64'",
                f"write each master key as 'N:BASE64' (N = 1, 2, …); {_GENERATE_HINT}",
            )
        version = int(version_text)
        _check_version(version)
        if version in keys:
            raise VaultError(
                "vault_key_invalid",
                f"{source} holds master key version {version} twice",
                "give every master key its own version number",
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise VaultError(
                "vault_key_invalid",
                f"master key version {version} in {source} is not valid base64",
                _GENERATE_HINT,
            ) from None
        if len(key) != KEY_BYTES:
            raise VaultError(
                "vault_key_invalid",
                f"master key version {version} in {source} is {len(key)} bytes, not {KEY_BYTES}",
                _GENERATE_HINT,
            )
        keys[version] = key
    if not keys:
        raise VaultError(
            "vault_key_invalid",
            f"{source} holds no master key",
            f"write one line 'N:BASE64' per master key; {_GENERATE_HINT}",
        )
    return keys


def _read_key_text(path: Path) -> str:
    """The key file's text, refused when group or others may read it."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise VaultError(
                "vault_key_file_permissions",
                f"master key file {path} is accessible by group or others "
                f"(mode {mode & 0o777:03o})",
                f"chmod 600 {path}",
            )
        return path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise VaultError(
            "vault_key_invalid",
            f"master key file {path} holds characters other than 'version:base64' lines",
            f"write one line 'N:BASE64' per master key; {_GENERATE_HINT}",
        ) from None
    except OSError as exc:
        raise VaultError(
            "vault_key_file_unreadable",
            f"cannot read master key file {path} ({_reason(exc)})",
            "make it readable by the user running repolink, or set REPOLINK_SECRET_KEY",
        ) from None


def _create_key_file(path: Path) -> None:
    """Write a key file with a fresh version 1, unless another process wins the race.

    The key is written to a private temporary file first and then hard-linked into place:
    the link either appears complete or fails because the file exists, so a process that
    loses the race never reads a half-written file.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = _write_private_temp(path, _key_line(1, secrets.token_bytes(KEY_BYTES)))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise VaultError(
            "vault_key_file_unwritable",
            f"cannot create master key file {path} ({_reason(exc)})",
            "make the data directory writable, set REPOLINK_SECRET_KEY_FILE, or set "
            "REPOLINK_SECRET_KEY",
        ) from None
    _fsync_dir(path.parent)
    log.info("created master key file %s", path)


def _replace_file(path: Path, text: str) -> None:
    try:
        tmp = _write_private_temp(path, text)
        try:
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise VaultError(
            "vault_key_file_unwritable",
            f"cannot rewrite master key file {path} ({_reason(exc)})",
            "make the key file and its directory writable by the user running repolink",
        ) from None
    _fsync_dir(path.parent)


def _write_private_temp(path: Path, text: str) -> Path:
    """A new 0600 file beside ``path`` holding ``text``, flushed to disk."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    except OSError:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise VaultError(
            "vault_key_file_unwritable",
            f"cannot create lock file {lock_path} ({_reason(exc)})",
            "make the key file's directory writable by the user running repolink",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _key_line(version: int, key: bytes) -> str:
    return f"{version}:{base64.b64encode(key).decode('ascii')}\n"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
