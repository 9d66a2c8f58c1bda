"""``HOST[:PORT]``: how a known host is named on the command line and in known_hosts.

A host is kept lower-case, an IPv6 address without brackets in its compressed form, and the
port always as a number (22 when none is given). Two spellings matter:

- :func:`display_name` — what people type and read: ``host``, ``host:2222``, ``[::1]``,
  ``[::1]:2222``;
- :func:`known_hosts_name` — what OpenSSH writes in known_hosts: ``host`` for port 22,
  ``[host]:port`` otherwise (an IPv6 address on port 22 stays bare).
"""

from __future__ import annotations

import ipaddress
import logging
import re

from repolink.errors import ValidationError

log = logging.getLogger(__name__)

DEFAULT_PORT = 22
MAX_HOST_LENGTH = 253
# Bad input is echoed only when it is short and plainly a host: it may be anything pasted.
_SHOWN_CHARS = 80
_ECHOABLE = re.compile(rf"[A-Za-z0-9._:\[\]-]{{1,{_SHOWN_CHARS}}}")

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")
_EXAMPLE = "git.example.com, git.example.com:2222 or [2001:db8::1]:2222"


def parse_host_port(text: str) -> tuple[str, int]:
    """``(host, port)`` from ``host``, ``host:port``, ``[ipv6]``, ``[ipv6]:port`` or a bare
    IPv6 address; raise :class:`ValidationError` (``host_invalid``, ``port_invalid``)."""
    stripped = text.strip()
    if stripped.startswith("["):
        inner, bracket, after = stripped[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise _host_invalid(stripped, "the '[' of an IPv6 address is not closed by ']'")
        port = check_port(_port_number(after[1:], stripped)) if after else DEFAULT_PORT
        return _ipv6(inner, stripped), port
    if stripped.count(":") > 1:
        # A bare IPv6 address: a port would be ambiguous, so none is read.
        return _ipv6(stripped, stripped), DEFAULT_PORT
    host, colon, port_text = stripped.partition(":")
    port = check_port(_port_number(port_text, stripped)) if colon else DEFAULT_PORT
    return normalize_host(host), port


def normalize_host(host: str) -> str:
    """The host as it is stored: lower-case name, or compressed IPv6 without brackets."""
    candidate = host.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if ":" in candidate:
        return _ipv6(candidate, host)
    lowered = candidate.lower()
    if not lowered:
        raise _host_invalid(host, "no host was given")
    if lowered.startswith("-"):
        raise _host_invalid(host, "a host cannot start with '-'")
    if not lowered.isascii() or len(lowered) > MAX_HOST_LENGTH or not _HOSTNAME.fullmatch(lowered):
        raise _host_invalid(host, "this is not a valid host name or address")
    return lowered


def check_port(port: int) -> int:
    """``port`` when it is 1 to 65535, else ``port_invalid``."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        raise ValidationError(
            "port_invalid",
            "the port is not a number from 1 to 65535",
            f"write the host as {_EXAMPLE}",
        )
    return port


def known_hosts_name(host: str, port: int) -> str:
    """The host as OpenSSH looks it up in known_hosts."""
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


def display_name(host: str, port: int) -> str:
    """The host as ``repolink hostkeys`` commands take it: ``HOST[:PORT]``."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port == DEFAULT_PORT else f"{shown}:{port}"


def _port_number(text: str, original: str) -> int:
    if not _PORT.fullmatch(text):
        raise ValidationError(
            "port_invalid",
            f"the port of {_shown(original)} is not a number",
            f"write the host as {_EXAMPLE}",
        )
    return int(text)


def _ipv6(text: str, original: str) -> str:
    if "%" in text:
        raise _host_invalid(original, "IPv6 zone ids are not supported")
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        raise _host_invalid(original, "this is not an IPv6 address") from None


def _host_invalid(text: str, reason: str) -> ValidationError:
    return ValidationError(
        "host_invalid", f"{_shown(text)}: {reason}", f"write the host as {_EXAMPLE}"
    )


def _shown(text: str) -> str:
    stripped = text.strip()
    if _ECHOABLE.fullmatch(stripped):
        return repr(stripped)
    return f"the host given ({len(stripped)} characters)"
