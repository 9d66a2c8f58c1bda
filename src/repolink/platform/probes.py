"""Is there an SSH server at ``host:port``? The network half of ``repolink doctor``.

Three probes, each bounded by a deadline and each failing with one error code and its fix:

- :func:`resolve` — DNS (``dns_failed``). ``getaddrinfo`` cannot be cancelled, so it runs in a
  daemon thread that is abandoned when the deadline passes;
- :func:`connect` — a TCP connection to the first address that accepts one
  (``connection_refused``, ``timeout``);
- :func:`read_banner` — the server's ``SSH-2.0-…`` identification line on that connection
  (``timeout``, ``not_ssh_server``, ``ssh_version_unsupported``). Nothing is sent: a server
  speaks first in SSH, so its first line says what listens there.

Server-sent text is reduced to printable ASCII and shortened before it reaches a message.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

from repolink.errors import GitError
from repolink.knownhosts import display_name

log = logging.getLogger(__name__)

BANNER_LIMIT_BYTES = 8192
# RFC 4253 §4.2: the identification line is at most 255 characters with its CR LF.
BANNER_MAX_CHARS = 253
SHOWN_LINE_CHARS = 60
SSH2_PREFIXES = ("SSH-2.0-", "SSH-1.99-")

_REFUSED_HINT = (
    "check the host and the port in the URL (ssh://git@host:PORT/path for a port other than "
    "22), and that the SSH server is running"
)


@dataclass(frozen=True)
class Address:
    """One address ``getaddrinfo`` gave for the host, ready for ``socket.connect``."""

    family: socket.AddressFamily
    sockaddr: tuple[str, int] | tuple[str, int, int, int]

    @property
    def ip(self) -> str:
        return self.sockaddr[0]


def resolve(host: str, port: int, *, timeout: float) -> list[Address]:
    """The addresses of ``host`` (stream sockets), in the resolver's order, without repeats."""
    found: list[Address] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            for family, _type, _proto, _name, sockaddr in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            ):
                address = Address(family, sockaddr)  # type: ignore[arg-type]
                if address not in found:
                    found.append(address)
        except (OSError, UnicodeError) as exc:
            failures.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="probe-dns", daemon=True).start()
    if not done.wait(timeout):
        raise GitError(
            "dns_failed",
            f"resolving the host name {host} did not finish within {timeout:g} s",
            "check this machine's DNS servers (and VPN), then try again",
        )
    if failures or not found:
        reason = getattr(failures[0], "strerror", None) if failures else None
        raise GitError(
            "dns_failed",
            f"the host name {host} cannot be resolved" + (f" ({reason})" if reason else ""),
            "check the host in the URL for typos, and this machine's DNS",
        )
    return found


def connect(addresses: list[Address], host: str, port: int, *, timeout: float) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that accepts one (as ssh tries them)."""
    name = display_name(host, port)
    refused: list[str] = []
    timed_out: list[str] = []
    other: list[str] = []
    for address in addresses:
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.sockaddr)
        except ConnectionRefusedError:
            refused.append(address.ip)
        except TimeoutError:
            timed_out.append(address.ip)
        except OSError as exc:
            other.append(f"{address.ip}: {exc.strerror or type(exc).__name__}")
        else:
            return sock
        sock.close()
    if refused:
        raise GitError(
            "connection_refused",
            f"nothing accepts connections on {name} (refused by {', '.join(refused)})",
            _REFUSED_HINT,
        )
    if timed_out and not other:
        raise GitError(
            "timeout",
            f"{name} did not accept a connection within {timeout:g} s",
            "check that the host is reachable from here (firewall, VPN), or raise "
            "REPOLINK_SSH_CONNECT_TIMEOUT",
        )
    raise GitError(
        "connection_refused",
        f"cannot reach {name}: {'; '.join(other)}",
        "check the host and the port in the URL, and the network between here and there",
    )


def read_banner(sock: socket.socket, host: str, port: int, *, timeout: float) -> str:
    """The server's SSH identification line (``SSH-2.0-OpenSSH_9.2p1 …``) on ``sock``.

    Lines before it are allowed (RFC 4253 §4.2) and skipped.
    """
    name = display_name(host, port)
    deadline = time.monotonic() + timeout
    received = b""
    while len(received) < BANNER_LIMIT_BYTES:
        for line in received.split(b"\n")[:-1]:
            if line.startswith(b"SSH-"):
                return _identification(line, name)
        remaining = deadline - time.monotonic()
        chunk = _receive(sock, remaining) if remaining > 0 else None
        if chunk is None:
            if received:
                raise _not_ssh(name, received)
            raise GitError(
                "timeout",
                f"{name} accepted the connection but sent no SSH banner within {timeout:g} s",
                "check that the port in the URL is the SSH server's (an HTTPS port waits "
                "silently), or raise REPOLINK_SSH_CONNECT_TIMEOUT",
            )
        if not chunk:
            if received:
                raise _not_ssh(name, received)
            raise GitError(
                "not_ssh_server",
                f"{name} closed the connection without sending an SSH banner",
                "check the port in the URL; the server may also refuse this machine "
                "(firewall, fail2ban, MaxStartups)",
            )
        received += chunk
    raise _not_ssh(name, received)


def _receive(sock: socket.socket, timeout: float) -> bytes | None:
    """Up to 1 KiB from ``sock``; ``None`` when nothing came in time, ``b""`` when closed."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1024)
    except TimeoutError:
        return None
    except OSError:
        return b""


def _identification(line: bytes, name: str) -> str:
    text = _printable(line.rstrip(b"\r"))[:BANNER_MAX_CHARS]
    if not text.startswith(SSH2_PREFIXES):
        raise GitError(
            "ssh_version_unsupported",
            f"{name} speaks only an old SSH protocol ({text[:SHOWN_LINE_CHARS]})",
            "SSH protocol 1 is not supported by OpenSSH or Git hosts: check the port in the "
            "URL, or ask the server's admin to enable SSH 2",
        )
    return text


def _not_ssh(name: str, received: bytes) -> GitError:
    first = _printable(received.split(b"\n", 1)[0].rstrip(b"\r"))[:SHOWN_LINE_CHARS]
    return GitError(
        "not_ssh_server",
        f"{name} answers, but not with SSH (it sent {first!r})",
        "the port in the URL is not an SSH server's: check it (Git hosts serve SSH on 22, "
        "some also on 443 of an ssh.* host name)",
    )


def _printable(data: bytes) -> str:
    return "".join(char if " " <= char <= "~" else "?" for char in data.decode("ascii", "replace"))
