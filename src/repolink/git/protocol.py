"""The one piece of git's wire protocol repolink speaks itself: listing a remote's refs.

A refresh compares the remote's branches and tags with the mirror's before fetching. When a
shared SSH connection is open (:mod:`repolink.git.sshmux`) that listing needs no git process:
:func:`list_refs` talks to the server's ``git-upload-pack`` as ``git ls-remote`` would —
protocol version 2 (``ls-refs`` with ``ref-prefix``) when the server speaks it, else the
version 0 advertisement — and :func:`upload_pack_command` is the remote command git itself
sends for a URL (the compatibility tests compare both with the real git binary).

Anything unexpected raises :class:`ProtocolError`; like :class:`repolink.git.sshmux.MuxUnavailable`
it is never shown to a user: the caller runs ``git ls-remote`` instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Protocol

from repolink.urls import SSHURL

log = logging.getLogger(__name__)

__all__ = ["ByteStream", "ProtocolError", "list_refs", "upload_pack_command"]

FLUSH = b"0000"
DELIM = b"0001"
_HEADER = 4
_MAX_PACKET = 65520
_OBJECT_ID = re.compile(rb"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_LENGTH = re.compile(rb"[0-9a-f]{4}")
# Paths whose quoting by git is certain: its sq_quote wraps them in single quotes unchanged.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._~/+@-]+")


class ProtocolError(Exception):
    """The server's answer is not the protocol as expected. Never user-facing."""


class ByteStream(Protocol):
    """The remote command's standard input and output."""

    def read_exactly(self, count: int) -> bytes: ...

    def write(self, data: bytes) -> None: ...


def upload_pack_command(url: SSHURL) -> str | None:
    """The command git runs on the server to fetch ``url``, or ``None`` when its path holds
    characters git would quote in a way not reproduced here."""
    if not _PLAIN_PATH.fullmatch(url.path):
        return None
    # git drops the "/" before "~" (ssh://host/~user/repo); every other path is absolute.
    path = url.path if url.path.startswith("~") else "/" + url.path
    return f"git-upload-pack '{path}'"


def list_refs(stream: ByteStream, prefixes: Sequence[str]) -> dict[str, str]:
    """The server's refs under ``prefixes`` (e.g. ``refs/heads/``) and the objects they name;
    an annotated tag names its tag object, as ``git ls-remote --refs`` shows it."""
    first = _read_packet(stream)
    if first == b"version 1\n":  # a server asked for version 1 answers with version 0
        first = _read_packet(stream)
    if first == b"version 2\n":
        return _ls_refs(stream, prefixes)
    return _advertised(stream, first, prefixes)


def _ls_refs(stream: ByteStream, prefixes: Sequence[str]) -> dict[str, str]:
    capabilities = []
    while (line := _read_packet(stream)) is not None:
        capabilities.append(line.rstrip(b"\n"))
    if not any(cap == b"ls-refs" or cap.startswith(b"ls-refs=") for cap in capabilities):
        raise ProtocolError("the server does not offer ls-refs")
    request = [_packet(b"command=ls-refs\n")]
    # A repository in another object format must hear its name back, as git's client does.
    request += [_packet(cap + b"\n") for cap in capabilities if cap.startswith(b"object-format=")]
    request.append(DELIM)
    request += [_packet(b"ref-prefix " + prefix.encode() + b"\n") for prefix in prefixes]
    # The request's end, then the session's: the server answers and ends at once, with no
    # round trip for the second flush after the answer.
    request += [FLUSH, FLUSH]
    stream.write(b"".join(request))
    refs: dict[str, str] = {}
    while (line := _read_packet(stream)) is not None:
        target, _, rest = line.rstrip(b"\n").partition(b" ")
        name = rest.split(b" ", 1)[0]
        _add(refs, target, name, prefixes)
    return refs


def _advertised(stream: ByteStream, first: bytes | None, prefixes: Sequence[str]) -> dict[str, str]:
    refs: dict[str, str] = {}
    line = first
    while line is not None:
        target, _, name = line.split(b"\0", 1)[0].rstrip(b"\n").partition(b" ")
        if not name.endswith(b"^{}"):  # the peeled line of an annotated tag
            _add(refs, target, name, prefixes)
        line = _read_packet(stream)
    stream.write(FLUSH)  # "I want nothing": upload-pack ends without sending a pack
    return refs


def _add(refs: dict[str, str], target: bytes, name: bytes, prefixes: Sequence[str]) -> None:
    if not name:
        raise ProtocolError("a ref line without a name")
    text = name.decode("utf-8", "surrogateescape")
    if not text.startswith(tuple(prefixes)):
        return  # HEAD, refs/pull/…: whatever they hold is none of our business
    if not _OBJECT_ID.fullmatch(target):
        raise ProtocolError("a ref line without an object id")
    refs[text] = target.decode("ascii")


def _read_packet(stream: ByteStream) -> bytes | None:
    """One pkt-line's payload; ``None`` for a flush packet."""
    header = stream.read_exactly(_HEADER)
    if not _LENGTH.fullmatch(header):
        raise ProtocolError("not a pkt-line length")
    length = int(header, 16)
    if length == 0:
        return None
    if length < _HEADER or length > _MAX_PACKET:
        raise ProtocolError(f"unexpected pkt-line length {length}")
    payload = stream.read_exactly(length - _HEADER)
    if payload.startswith(b"ERR "):
        raise ProtocolError("the server answered with an error")
    return payload


def _packet(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + _HEADER) + payload
